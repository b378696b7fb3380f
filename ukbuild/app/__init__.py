"""Multi-service apps: an app file names services built from recipes, their network and volumes.

    import ukbuild.app as uka

    app = uka.load_app("recipes/webstack/app.toml")
    built = uka.build_app(app, ukbuild.api.BuildOptions(jobs=2))   # images, compose.yaml, k8s/*.yaml
    with uka.AppRun(app, uka.plan_services(app), built) as running:  # every service under QEMU
        running.wait_for("web", r"listening", timeout=30)

See docs/apps.md for the file format and the network model.
"""

from __future__ import annotations

from .build import AppBuildResult, ServicePlan, build_app, plan_services
from .model import App, Port, Service, Volume, VolumeSpec, is_app_file, load_app
from .run import AppRun, exit_status, guest_commands, run_app

__all__ = [
    "App",
    "AppBuildResult",
    "AppRun",
    "Port",
    "Service",
    "ServicePlan",
    "Volume",
    "VolumeSpec",
    "build_app",
    "exit_status",
    "guest_commands",
    "is_app_file",
    "load_app",
    "plan_services",
    "run_app",
]
