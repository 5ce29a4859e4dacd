-- The cleanup job asks which contents objects still hold (their cached variants are kept).
create index objects_sha256 on objects (sha256);
