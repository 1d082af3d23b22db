"""Suites, online evaluation at any team size, scores, tables and performance measurements."""
