-- The web stack's database.  Aria tables: the Rumprun MariaDB runs with InnoDB off.
CREATE DATABASE webstack CHARACTER SET utf8mb4;
CREATE TABLE webstack.greeting (
    id INT NOT NULL PRIMARY KEY,
    message VARCHAR(200) NOT NULL
) ENGINE=Aria;
-- The PHP application's account: read-only, from the app network.
CREATE USER 'webapp'@'%' IDENTIFIED BY 'webapp';
GRANT SELECT ON webstack.* TO 'webapp'@'%';
