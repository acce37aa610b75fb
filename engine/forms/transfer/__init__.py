"""Record import and export: CSV and XLSX readers and writers, column mapping, the import run.

Nothing here touches the database; `engine.forms.transfer_service` wires it to the records
storage and the import job table.
"""

from engine.forms.transfer.cells import CellContext, CellError, Options, decode_cell, encode_cell
from engine.forms.transfer.exporter import export_rows, field_options, header_rows
from engine.forms.transfer.importer import (
    BATCH_SIZE,
    REPORT_COLUMNS,
    ErrorReport,
    ImportRun,
    RecordSink,
    read_error_report,
    run_import,
)
from engine.forms.transfer.job import (
    IMPORT_MODES,
    ImportJobState,
    ImportMode,
    ImportProgress,
    ImportStatus,
)
from engine.forms.transfer.mapping import ColumnMapping, MappedColumn, map_columns
from engine.forms.transfer.readers import SourceRow, Table, open_table, read_csv, read_xlsx
from engine.forms.transfer.writers import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    escape_text,
    iter_file,
    unescape_text,
    write_csv,
    write_xlsx,
)

__all__ = [
    "BATCH_SIZE",
    "CSV_MEDIA_TYPE",
    "IMPORT_MODES",
    "REPORT_COLUMNS",
    "XLSX_MEDIA_TYPE",
    "CellContext",
    "CellError",
    "ColumnMapping",
    "ErrorReport",
    "ImportJobState",
    "ImportMode",
    "ImportProgress",
    "ImportRun",
    "ImportStatus",
    "MappedColumn",
    "Options",
    "RecordSink",
    "SourceRow",
    "Table",
    "decode_cell",
    "encode_cell",
    "escape_text",
    "export_rows",
    "field_options",
    "header_rows",
    "iter_file",
    "map_columns",
    "open_table",
    "read_csv",
    "read_error_report",
    "read_xlsx",
    "run_import",
    "unescape_text",
    "write_csv",
    "write_xlsx",
]
