(* Modelled on mirage-skeleton applications/static_website_tls (HTTP only, crunched htdocs). *)
open Mirage

let data = generic_kv_ro ~key:Key.(value @@ kv_ro ~group:"data" ()) "htdocs"
let stack = generic_stackv4v6 default_network
let http_srv = cohttp_server @@ conduit_direct ~tls:false stack

let main =
  let packages = [ package "uri"; package "magic-mime" ] in
  main ~packages "Dispatch.HTTP" (kv_ro @-> http @-> job)

let () = register "www" [ main $ data $ http_srv ]
