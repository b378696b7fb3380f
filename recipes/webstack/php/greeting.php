<?php
// Reads one row from MariaDB (the db service, 10.77.0.12 on the app network) and shows it.
// Plain mysqli, no framework: the smallest end-to-end check of the stack.
mysqli_report(MYSQLI_REPORT_OFF);
header('Content-Type: text/plain; charset=utf-8');
$db = @new mysqli('10.77.0.12', 'webapp', 'webapp', 'webstack', 3306);
if ($db->connect_errno) {
    http_response_code(503);
    echo "database unavailable: {$db->connect_error}\n";
    exit;
}
$result = $db->query('SELECT id, message FROM greeting WHERE id = 1');
$row = $result ? $result->fetch_assoc() : null;
if ($row === null) {
    http_response_code(500);
    echo "no greeting row\n";
    exit;
}
echo "greeting {$row['id']}: {$row['message']}\n";
