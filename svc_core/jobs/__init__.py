"""Jobs: one model for every conversion or cover asked of the server (the page, the REST API, the CLI's batch, the
Python API), run by an in-process worker pool (the default) or by workers on a Dramatiq/Redis queue (scale-out).

model.py (the record), errors.py (stable error codes), store.py / redis_store.py (where records live),
blobs.py (input and result files), requests.py (options in, engine requests out), runner.py (one job, anywhere),
embedded.py (the in-process pool), broker.py + worker_cli.py (Dramatiq), service.py (the facade), limits.py
(admission caps, the disk bound), retention.py (old finished jobs removed).
"""
