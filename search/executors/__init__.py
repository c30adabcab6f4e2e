"""Executors that run EvalTasks: local (in-process or a process pool); Celery lives in workers/."""
