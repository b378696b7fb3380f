open Lwt.Infix
open Cmdliner

let http_port =
  let doc = Arg.info ~doc:"Listening HTTP port." [ "http" ] in
  Mirage_runtime.register_arg Arg.(value & opt int 80 doc)

module HTTP (Data : Mirage_kv.RO) (Http : Cohttp_mirage.Server.S) = struct
  (* A URI's path names a file of htdocs/; "/" is index.html. *)
  let rec dispatcher data uri =
    match Uri.path uri with
    | "" | "/" -> dispatcher data (Uri.with_path uri "index.html")
    | path -> (
        let headers = Cohttp.Header.init_with "content-type" (Magic_mime.lookup path) in
        Data.get data (Mirage_kv.Key.v path) >>= function
        | Ok body -> Http.respond_string ~status:`OK ~body ~headers ()
        | Error _ -> Http.respond_not_found ~uri ())

  let start data http =
    let port = http_port () in
    Logs.info (fun f -> f "serving htdocs over HTTP");
    Logs.info (fun f -> f "listening on %d/TCP" port);
    let callback _conn request _body = dispatcher data (Cohttp.Request.uri request) in
    http (`TCP port) (Http.make ~callback ())
end
