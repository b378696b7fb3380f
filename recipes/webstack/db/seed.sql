INSERT INTO webstack.greeting (id, message) VALUES
    (1, 'Hello from MariaDB, through PHP and nginx, each in its own unikernel');
