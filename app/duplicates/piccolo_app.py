from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="duplicates",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    migration_dependencies=["app.accounts.piccolo_app", "app.customers.piccolo_app"],
    table_classes=table_finder(modules=["app.duplicates.tables"], exclude_imported=True),
)
