#!/bin/sh
# Lets the replica connect for streaming replication (the official image's init hook).
echo "host replication socle all scram-sha-256" >> "$PGDATA/pg_hba.conf"
