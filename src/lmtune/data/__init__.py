"""The data layer: read tables, clean text, check rows, split and report on data quality."""

from lmtune.data.clean import clean_text, split_labels
from lmtune.data.labelled import load_labelled
from lmtune.data.readers import read_splits, read_table, select_columns
from lmtune.data.splits import quality_report, stratified_sample, stratified_split
from lmtune.data.validate import check_labels_seen, check_required

__all__ = [
    "check_labels_seen", "check_required", "clean_text", "load_labelled", "quality_report", "read_splits",
    "read_table", "select_columns", "split_labels", "stratified_sample", "stratified_split",
]
