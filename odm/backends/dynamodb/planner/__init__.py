"""The DynamoDB query planner: expressions to Query/Scan requests (see compiler.py)."""

from .compiler import Access, Context, ExpressionCompiler, Plan, access_paths, plan_query

__all__ = ["Access", "Context", "ExpressionCompiler", "Plan", "access_paths", "plan_query"]
