"""Admission caps through the REST API (a real server): beyond --max-queued-jobs a submit answers 429 with the
stable code `busy` and a Retry-After header, and nothing is stored; the page's background submit says the same as
a gr.Error. The server's workers are stopped first, so the admitted job stays queued (no timing involved)."""
from __future__ import annotations

from api_support import error_of, submit


def stored(server) -> tuple[list[str], list[str]]:
    service = server.standalone.jobs.service
    return sorted(r.id for r in service.list(limit=1000)), sorted(service.blobs.list_keys("inputs/"))


def test_a_submit_beyond_the_callers_cap_is_429_busy_and_stores_nothing(make_api, tmp_path, clip):
    server = make_api(tmp_path / "work", max_queued_jobs=1, max_queued_jobs_total=5)
    try:
        server.standalone.jobs.service.queue.stop(wait=True, timeout=None)  # no worker: jobs stay queued
        with server.client() as client:
            first = submit(client, clip)
            assert first.status_code == 202, first.text
            before = stored(server)
            refused = submit(client, clip)
            assert refused.status_code == 429 and error_of(refused) == "busy"
            assert int(refused.headers["Retry-After"]) > 0 and "limit is 1" in refused.json()["error"]["message"]
            assert stored(server) == before and len(before[0]) == 1
            cancelled = client.post(f"/jobs/{first.json()['id']}/cancel")
            assert cancelled.json()["status"] == "cancelled"
            assert submit(client, clip).status_code == 202  # its job ended: room again
    finally:
        server.stop()


def test_the_pages_background_submit_shows_busy_as_a_page_error(make_api, tmp_path, clip):
    import gradio as gr
    import pytest

    from svc_core.ui.job_io import ConvertRequest
    from svc_core.ui.jobs_tab import JobsTabContext, submit_background

    server = make_api(tmp_path / "work", max_queued_jobs=1)
    try:
        service = server.standalone.jobs.service
        service.queue.stop(wait=True, timeout=None)
        ctx = JobsTabContext(service, tmp_path / "downloads")
        request = ConvertRequest(audio_path=str(clip), model="starter", speaker="")
        assert "queued" in submit_background(ctx, request, None)
        before = stored(server)
        with pytest.raises(gr.Error, match="limit is 1"):
            submit_background(ctx, request, None)
        assert stored(server) == before
    finally:
        server.stop()
