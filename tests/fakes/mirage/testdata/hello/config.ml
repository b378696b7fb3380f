(* mirage-skeleton tutorial/hello, as for mirage 4.9-4.11. *)
open Mirage

let packages = [ package "duration" ]
let main = main ~packages "Unikernel" job
let () = register "hello" [ main ]
