"""One expression tree shared by every backend, and the compiler base."""

from .compiler import Compiler
from .nodes import And, Between, Compare, Contains, Exists, In, Like, Node, Not, Or, Path, Prefix

__all__ = [
    "And", "Between", "Compare", "Compiler", "Contains", "Exists", "In", "Like",
    "Node", "Not", "Or", "Path", "Prefix",
]
