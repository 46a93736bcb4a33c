-- Run once on the first node of the cluster (Galera copies it to the others): the database and
-- user the boxes connect with (through HAProxy, so from HAProxy's address), and the user
-- HAProxy's `option mysql-check` logs in as (no password, no rights: it only proves the node
-- takes connections). Change the password, and say the same in the boxes' database.url.
CREATE DATABASE IF NOT EXISTS onebox CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'onebox'@'198.51.100.10' IDENTIFIED BY 'change-me';
GRANT ALL PRIVILEGES ON onebox.* TO 'onebox'@'198.51.100.10';
CREATE USER IF NOT EXISTS 'haproxy'@'198.51.100.10';
