"""Backends turn a TaskPlan into a running sandbox and a Result."""
