(* mirage >= 4.9.0 & < 4.12.0 — after mirage-skeleton's applications/static_website_tls,
   without TLS: an HTTP server on the direct stack, serving htdocs/ (crunched). *)
open Mirage

let stack = generic_stackv4v6 default_network
let data_key = Key.(value @@ kv_ro ~group:"data" ())
let data = generic_kv_ro ~key:data_key "htdocs"
let http_srv = cohttp_server @@ conduit_direct ~tls:false stack

let main =
  let packages = [ package "uri"; package "magic-mime" ] in
  main ~packages "Dispatch.HTTP" (kv_ro @-> http @-> job)

let () = register "www" [ main $ data $ http_srv ]
