-- Run once on the first node of the cluster (Galera copies it to the others): the database and
-- the user the boxes connect with (through HAProxy, so from HAProxy's address). Change the
-- password, and say the same in the boxes' database.url.
CREATE DATABASE IF NOT EXISTS onebox CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'onebox'@'198.51.100.10' IDENTIFIED BY 'change-me';
GRANT ALL PRIVILEGES ON onebox.* TO 'onebox'@'198.51.100.10';
