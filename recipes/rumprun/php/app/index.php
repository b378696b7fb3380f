<?php
// The PHP application of the php recipe's data image: php-cgi -b serves it to nginx over FastCGI.
header('Content-Type: text/plain');
echo "Hello from PHP ", PHP_VERSION, " in a Rumprun unikernel\n";
echo "1 + 1 = ", 1 + 1, "\n";
