"""The SGL language's tables, a leaf: the checker, lowering, the IR verifier and the
executor all read these one definitions.

types.py        static types, how they print, assignability
values.py       run-time values: str() of a value, type names, ValueOpError
signatures.py   Param, result rules: how builtins and methods declare their arguments
builtins.py     BUILTINS: one record per builtin (signature, result, implementation, doc)
methods.py      METHODS: one record per str/list/dict method
gen_params.py   GEN_PARAMS: one record per gen parameter (type, SamplingParams field, rule)
select_params.py  SELECT_PARAMS: one record per select parameter (choices_method, ...)
state.py        what a call reads back about itself: CallContext, the Message/GenMeta/
                SelectMeta schemas of text(), messages(), meta(x)
schemas.py      JSON schemas of SGL types
"""

from sglc.lang.builtins import BUILTINS, NAMESPACES, Builtin
from sglc.lang.gen_params import AUTO_MODEL, GEN_PARAMS, GenParam, sampling_defaults
from sglc.lang.methods import (
    METHOD_NAMES,
    METHODS,
    Method,
    find_method,
    methods_of,
    receiver_kind,
    value_kind,
)
from sglc.lang.select_params import CHOICES_METHODS, SELECT_PARAMS, SelectParam
from sglc.lang.signatures import ArgTypeError, ArgTypes, Param, result_type
from sglc.lang.state import STATE_SCHEMAS, CallContext
from sglc.lang.values import ValueOpError, to_text, type_name

__all__ = [
    "AUTO_MODEL",
    "BUILTINS", "CHOICES_METHODS", "GEN_PARAMS", "METHODS", "METHOD_NAMES", "NAMESPACES",
    "SELECT_PARAMS", "STATE_SCHEMAS", "ArgTypeError", "ArgTypes", "Builtin", "CallContext",
    "GenParam", "Method", "Param", "SelectParam", "ValueOpError", "find_method", "methods_of",
    "receiver_kind", "result_type", "sampling_defaults", "to_text", "type_name", "value_kind",
]
