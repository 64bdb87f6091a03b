"""The Latent map tab in Debian's Chromium: the canvas draws the map, hovering a point shows its time, and a click
plays that moment (the select event reaches the server)."""
from __future__ import annotations


import pytest
import soundfile as sf

from latent_factories import SR

GUARD_MS = 60_000  # hang guard, not a timing


@pytest.fixture()
def chromium():
    from browser_support import launched_chromium

    yield from launched_chromium()


def test_map_hover_and_click_in_the_browser(ctx, chromium, input_wav, tmp_path):
    import gradio as gr

    from svc_core.ui.latent_tab import build_latent_tab

    wav = tmp_path / "phrase.wav"
    sf.write(wav, input_wav, SR)
    with gr.Blocks() as demo:
        build_latent_tab(ctx)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, ssr_mode=False, server_name="127.0.0.1",
                            allowed_paths=[str(ctx.work_dir)])
    try:
        page = chromium.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.locator("input[type=file]").first.set_input_files(str(wav))
        page.get_by_role("radio", name="pca").check()
        page.get_by_label("Convert").check()  # the target speaker is the voice's first, filled in at start
        page.get_by_role("button", name="Draw map").click()
        page.wait_for_function("() => Number(document.querySelector('#latent-map .latent-map').dataset.points || 0) > 100",
                               timeout=GUARD_MS, polling=200)
        assert "frames" in page.locator("#latent-map .latent-title").inner_text()
        canvas = page.locator("#latent-map canvas")
        box = canvas.bounding_box()
        # the last drawn point is a converted frame (added frames are drawn on top); move over it, then click it
        x, y, _ = page.evaluate("() => { const p = document.querySelector('#latent-map .latent-map').latentPoints; "
                                "return p[p.length - 1]; }")
        size = page.evaluate("() => { const c = document.querySelector('#latent-map canvas'); "
                             "return [c.width, c.height]; }")
        px, py = box["x"] + x * box["width"] / size[0], box["y"] + y * box["height"] / size[1]
        page.mouse.move(px, py)
        page.wait_for_function("() => document.querySelector('#latent-map .latent-tip').textContent.includes(' s')",
                               timeout=GUARD_MS, polling=200)
        assert "phrase.wav -> fest_ked @" in page.locator("#latent-map .latent-tip").inner_text()  # converted: on top
        page.mouse.click(px, py)
        page.wait_for_function("() => document.body.innerText.includes('(playing ')", timeout=GUARD_MS, polling=200)
        assert page.locator("audio").count() >= 1
    finally:
        demo.close()
