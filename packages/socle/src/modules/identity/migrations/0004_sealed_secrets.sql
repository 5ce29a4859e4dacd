-- Private signing keys and TOTP seeds are sealed with the server's SECRET_KEY (AES-256-GCM, see
-- kernel/secrets) before they are stored, so a dump or a backup of the database does not give
-- them away. A sealed value is text (`sb1.<key id>.<base64url>`), hence the type change. Rows
-- written before this migration are sealed by the identity module when it starts.
alter table signing_keys alter column private_jwk type text using private_jwk::text;
