from ukbuild.cli import run

run()
