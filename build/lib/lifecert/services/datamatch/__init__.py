"""Monthly data comparison: department extracts (deaths, imprisonment, alive evidence) matched
against pensioners, turned into payment suspensions/resumptions, passive survival confirmations,
review cases, and the lists and reports staff hand on."""

from lifecert.services.datamatch.importer import ImportSummary, run_import
from lifecert.services.datamatch.mapping import Mapping, MappingError, load_mapping, mapping_for, seed_mappings
from lifecert.services.datamatch.reader import ExtractError

__all__ = [
    "ExtractError",
    "ImportSummary",
    "Mapping",
    "MappingError",
    "load_mapping",
    "mapping_for",
    "run_import",
    "seed_mappings",
]
