"""Orchestration: enrollment, verification, review, data matching. Services own transactions."""
