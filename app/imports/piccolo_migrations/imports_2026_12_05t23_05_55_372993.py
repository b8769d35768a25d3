from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from enum import Enum
from piccolo.columns.column_types import BigInt
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-05T23:05:55:372993"
VERSION = "1.38.0"
DESCRIPTION = "True"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="imports", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="ImportBatch",
        tablename="import_batch",
        column_name="undo_below",
        db_column_name="undo_below",
        column_class_name="BigInt",
        column_class=BigInt,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="ImportBatch",
        tablename="import_batch",
        column_name="undo_done",
        db_column_name="undo_done",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="ImportBatch",
        tablename="import_batch",
        column_name="undo_total",
        db_column_name="undo_total",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.alter_column(
        table_class_name="ImportBatch",
        tablename="import_batch",
        column_name="status",
        db_column_name="status",
        params={
            "choices": Enum(
                "Status",
                {
                    "draft": "draft",
                    "queued": "queued",
                    "running": "running",
                    "done": "done",
                    "failed": "failed",
                    "undoing": "undoing",
                    "undone": "undone",
                },
            )
        },
        old_params={
            "choices": Enum(
                "Status",
                {
                    "draft": "draft",
                    "queued": "queued",
                    "running": "running",
                    "done": "done",
                    "failed": "failed",
                    "undone": "undone",
                },
            )
        },
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
