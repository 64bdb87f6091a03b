"""The web demo (issue #3): a Gradio Blocks app over `svc_core`, one module per job.

    settings.py     AppSettings + command line (`app.py --host --port --auth ...`)
    offline.py      environment switches so Gradio never phones home
    models.py       the models folder and uploaded voices (safe loading only), their picker labels
    upload_store.py uploads kept on disk with checked manifests, listed again at start, pruned to a budget
    workdir.py      the work folder: per-user cache default, lock, clean-up at start and exit
    voice_cache.py  loaded `Svc` objects, bounded, one lock per voice
    jobs.py         one conversion in a worker thread, streamed as `JobUpdate`s
    views.py        log/progress/timing rendering (pure functions)
    plots.py        the F0 plot data (source after transpose vs output)
    convert_tab.py  the Convert tab: widgets wired to `jobs`
    status_tab.py   the About/Status tab: `svc_core.doctor.collect()`
    server.py       build_app(settings) -> gr.Blocks, launch(settings)

Gradio is imported only by convert_tab/status_tab/server, after `offline.apply()`.
"""
