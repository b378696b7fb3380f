module HTTP (Data : Mirage_kv.RO) (Http : Cohttp_mirage.Server.S) = struct
  let start data http =
    Logs.info (fun f -> f "listening on 80/TCP");
    Http.listen (`TCP 80) (Http.make ~callback:(fun _ _ _ -> ignore data; assert false) ())
end
