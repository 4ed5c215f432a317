"""A large file's record says where the file goes once its last range is ingested.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

The finisher of a large file's last byte range (any replica) moves the file; the folder it
moves it into is the connector's to say (``LargeFilePage.done_folder``) and is now stored with
the ranges, so the core no longer knows the drop folder's layout. Every file registered before
this revision came from the drop folder, whose done folder is ``processed/`` beside the file:
those rows are given exactly that.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("done_folder", sa.String(length=1024), nullable=True))
    bind = op.get_bind()
    paths = bind.execute(sa.text("SELECT DISTINCT path FROM ingest_chunks")).scalars().all()
    for path in paths:
        bind.execute(
            sa.text("UPDATE ingest_chunks SET done_folder = :folder WHERE path = :path"),
            {"folder": os.path.join(os.path.dirname(path), "processed"), "path": path},
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_chunks", schema=None) as batch_op:
        batch_op.drop_column("done_folder")
