"""The web demo (issue #3): a Gradio Blocks app over `svc_core`, one module per job.

    settings.py     AppSettings + command line (`app.py --host --port --auth ...`)
    offline.py      environment switches so Gradio never phones home
    models.py       the models folder and uploaded voices (safe loading only), their picker labels
    upload_store.py uploads kept on disk with checked manifests, listed again at start, pruned to a budget
    workdir.py      the work folder: per-user cache default, lock, clean-up at start and exit
    voice_cache.py  loaded `Svc` objects, bounded, one lock per voice
    jobs.py         one conversion in a worker thread, streamed as `JobUpdate`s
    views.py        pure helpers: progress/timing rendering, controls per voice, labels, example chips
    plots.py        the F0 plot data (source after transpose vs output, one fast tracker on both)
    convert_tab.py  the Convert tab: layout, per-voice controls, Convert/Stop wired to `jobs`
    settings_section.py  "More settings" and which of them a voice uses (`views.control_set`)
    upload_section.py  "Use your own voice": upload, load, rescan, a message that stays
    result_view.py  the result column and how a `JobUpdate` fills it
    cover_tab.py    the Cover tab: song, separator, voice, key, mix, formats; Make cover/Stop wired to `cover_job`
    cover_job.py    one song cover in a worker thread (svc_core.cover.run_cover), streamed as `CoverUpdate`s
    cover_choices.py  the separators that run here (community model files included) and the stem formats
    cover_progress.py  the cover's stage-weighted progress and ETA
    cover_view.py   the Cover tab's result column (a player per stem, downloads, summary) from a `CoverUpdate`
    status_tab.py   the About/Status tab: `svc_core.doctor.collect()`
    server.py       build_app(settings) -> gr.Blocks, launch(settings)

Gradio is imported only by the tab/section modules and server, after `offline.apply()`.
"""
