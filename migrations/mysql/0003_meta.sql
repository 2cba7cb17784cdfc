-- Small named values the daemons share, such as the key that signs download links.
CREATE TABLE meta (
    name VARCHAR(64) PRIMARY KEY,
    value TEXT NOT NULL
);
