"""The gallery's web app on its own origin, in Chromium: the browser client module and Uppy.

The local stack serves the API on http://127.0.0.1:<port>; the "gallery" is a page served by
a separate http.server and opened as http://localhost:<other port> (another origin, which
the local stage allows: loopback on any port). A third origin, http://stranger.test:<port>
(Chromium resolves it to the same server), is one the stage does not allow.

The Uppy test loads the real Uppy bundle installed from npm into tests/e2e/uppy
(scripts/bootstrap.sh runs ``npm ci`` there); it is skipped, naming the command, without it.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from local_stack.process import RunningStack, free_port
from tests.conftest import local_token

CHROMIUM = Path("/usr/bin/chromium")
UPPY_DIST = Path(__file__).with_name("uppy") / "node_modules" / "uppy" / "dist"
STRANGER_HOST = "stranger.test"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--host-resolver-rules=MAP {STRANGER_HOST} 127.0.0.1",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")

GALLERY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gallery</title><link rel="icon" href="data:,"></head>
<body><h1>Gallery</h1><input id="photo" type="file" aria-label="Photo"></body></html>
"""

# The recipe of docs/clients.md: Uppy's Dashboard, @uppy/aws-s3 with its upload parameters
# from POST /images (through the client module, so the key and the retries are the CLI's),
# then the image's status followed until it is terminal.
UPPY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gallery with Uppy</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/uppy/uppy.min.css"></head>
<body><div id="uppy"></div><ul id="done"></ul>
<script type="module">
import { Uppy, Dashboard, AwsS3 } from "/uppy/uppy.min.mjs";
const params = new URLSearchParams(location.search);
const { ImageServiceClient } = await import(params.get("api") + "/client/image-service.js");
const client = new ImageServiceClient({ apiUrl: params.get("api"), token: params.get("token") });
const ALREADY_UPLOADED = "image-service:already-uploaded";

const uppy = new Uppy({ restrictions: { allowedFileTypes: ["image/*"], maxFileSize: 10 * 1024 * 1024 } })
  .use(Dashboard, { inline: true, target: "#uppy", proudlyDisplayPoweredByUppy: false })
  .use(AwsS3, {
    shouldUseMultipart: false,
    async getUploadParameters(file) {
      const created = await client.createForFile(file.data);
      uppy.setFileMeta(file.id, { imageId: created.id });
      // A replay whose file already arrived has nothing to send (see uploadPartBytes).
      if (!created.upload) return { method: "PUT", url: ALREADY_UPLOADED };
      return { method: "POST", url: created.upload.url, fields: created.upload.fields };
    },
    // Uppy's own sender waits for S3's ETag; the service follows the image by its id and
    // needs none (the local stack's S3 sends none), and a replay has nothing to send.
    uploadPartBytes: ({ signature, body, onProgress, onComplete, signal }) =>
      signature.url === ALREADY_UPLOADED ? Promise.resolve({ ETag: "" }) : new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open(signature.method, signature.url);
        xhr.upload.addEventListener("progress", onProgress);
        xhr.addEventListener("load", () => {
          if (xhr.status < 200 || xhr.status >= 300) {
            return reject(new Error(`Storage refused the upload (HTTP ${xhr.status}).`));
          }
          const etag = xhr.getResponseHeader("ETag") || "";
          onComplete?.(etag);
          resolve({ ETag: etag });
        });
        xhr.addEventListener("error", () => reject(new Error("The upload could not reach storage.")));
        signal?.addEventListener("abort", () => xhr.abort());
        xhr.send(body);
      }),
  });

uppy.on("upload-success", async (file) => {
  const imageId = uppy.getFile(file.id).meta.imageId;
  const status = await client.waitForImage(imageId);
  const item = document.createElement("li");
  item.dataset.imageId = imageId;
  item.dataset.status = status.status;
  item.textContent = file.name + ": " + status.status;
  document.getElementById("done").append(item);
});
window.uppy = uppy;
</script></body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012  # the base class declares it so
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def gallery_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A static site on its own port: the gallery's pages (and Uppy's bundle when installed)."""
    root = tmp_path_factory.mktemp("gallery")
    (root / "index.html").write_text(GALLERY_PAGE)
    (root / "uppy.html").write_text(UPPY_PAGE)
    if UPPY_DIST.is_dir():
        (root / "uppy").symlink_to(UPPY_DIST, target_is_directory=True)
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, name="gallery-site", daemon=True).start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    """A page of a fresh Chromium profile, and the console errors it logs."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1000, "height": 700},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []

            def record(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", record)
            yield page, errors
        finally:
            context.close()


def _jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _open_gallery(page: Page, origin: str, stack: RunningStack) -> None:
    page.goto(f"{origin}/index.html")
    # The gallery imports the module from the API's origin (in AWS stages it ships its own copy).
    page.evaluate(
        "async (api) => { window.imageService = await import(api + '/client/image-service.js'); }", stack.api_url
    )


def test_the_whole_flow_with_the_module_from_another_origin(
    stack: RunningStack, gallery_site: int, browser: tuple[Page, list[str]], tmp_path: Path
) -> None:
    page, console_errors = browser
    user = f"gallery-{uuid.uuid4().hex[:8]}"
    photo = tmp_path / "harbour.jpg"
    photo.write_bytes(_jpeg(900, 600, (30, 90, 160)))
    _open_gallery(page, f"http://localhost:{gallery_site}", stack)
    page.get_by_label("Photo").set_input_files(str(photo))

    result = page.evaluate(
        """async ({api, token}) => {
            const { ImageServiceClient, ImageServiceError, idempotencyKey } = window.imageService;
            const client = new ImageServiceClient({ apiUrl: api, token: () => token });
            const file = document.getElementById("photo").files[0];
            const progress = [], phases = [];
            const image = await client.uploadImage(file, {
                onProgress: (p) => progress.push(p.loaded),
                onPhase: (phase) => phases.push(phase),
            });
            const fetched = await client.request("GET", "/images/" + image.id);
            const updated = await client.updateImage(image.id, { title: "Harbour" }, { version: image.version });
            let stale = null;
            try { await client.updateImage(image.id, { title: "Again" }, { version: image.version }); }
            catch (e) { stale = { status: e.status, code: e.code, isError: e instanceof ImageServiceError }; }
            const replay = await client.request("POST", "/images", {
                body: { filename: file.name, contentType: "image/jpeg", size: file.size },
                headers: { "Idempotency-Key": await idempotencyKey(file) },
            });
            await client.deleteImage(image.id);
            let gone = null;
            try { await client.getImage(image.id); } catch (e) { gone = { status: e.status, code: e.code }; }
            return {
                image, phases, progress, size: file.size, stale, gone,
                etag: fetched.headers.get("ETag"), requestId: fetched.headers.get("X-Request-Id"),
                updated: { title: updated.title, version: updated.version },
                replay: { status: replay.status, location: replay.headers.get("Location"), id: replay.body.id },
            };
        }""",
        {"api": stack.api_url, "token": local_token(user)},
    )

    image = result["image"]
    assert (image["status"], image["userId"], image["originalFilename"]) == ("completed", user, "harbour.jpg")
    assert (image["width"], image["height"]) == (900, 600)
    assert result["phases"] == ["creating", "uploading", "processing"]
    assert result["progress"][-1] == result["size"] and len(result["progress"]) >= 2
    # The exposed headers are readable from the gallery's origin.
    assert result["etag"] == f'"{image["version"]}"'
    assert result["requestId"]
    assert result["updated"] == {"title": "Harbour", "version": image["version"] + 1}
    assert result["stale"] == {"status": 409, "code": "version_conflict", "isError": True}
    assert result["replay"] == {"status": 200, "location": f"/images/{image['id']}", "id": image["id"]}
    assert result["gone"] == {"status": 404, "code": "not_found"}
    # Chromium logs the 409 and the 404 as failed loads; nothing was blocked.
    assert not [error for error in console_errors if "CORS" in error], console_errors


def test_error_bodies_are_readable_from_another_origin(
    stack: RunningStack, gallery_site: int, browser: tuple[Page, list[str]]
) -> None:
    page, _ = browser
    _open_gallery(page, f"http://localhost:{gallery_site}", stack)

    result = page.evaluate(
        """async (api) => {
            const { ImageServiceClient } = window.imageService;
            const refused = new ImageServiceClient({ apiUrl: api, token: "not-a-token" });
            let unauthorized = null;
            try { await refused.listImages(); }
            catch (e) { unauthorized = { status: e.status, code: e.code, requestId: e.requestId }; }
            // A simple request (no Authorization, so no preflight) to a route the API does not have.
            const response = await fetch(api + "/no-such-route");
            const unknown = { status: response.status, body: await response.json() };
            // With the token the browser asks first (a preflight), and no OPTIONS exists on a
            // path the API does not have: refused before the request is sent, as in AWS.
            let preflighted = null;
            try { await refused.request("GET", "/no-such-route"); }
            catch (e) { preflighted = { status: e.status, code: e.code }; }
            return { unauthorized, unknown, preflighted };
        }""",
        stack.api_url,
    )

    assert result["unauthorized"]["status"] == 401
    assert result["unauthorized"]["code"] == "unauthorized"
    assert result["unauthorized"]["requestId"]
    assert result["unknown"]["status"] == 404
    assert result["unknown"]["body"]["error"]["code"] == "not_found"
    assert result["preflighted"] == {"status": 0, "code": "network_error"}


def test_a_page_on_an_origin_the_stage_does_not_allow_is_refused_by_the_browser(
    stack: RunningStack, gallery_site: int, browser: tuple[Page, list[str]]
) -> None:
    page, console_errors = browser
    user = f"stranger-{uuid.uuid4().hex[:8]}"
    _open_gallery(page, f"http://{STRANGER_HOST}:{gallery_site}", stack)  # the module itself is public

    result = page.evaluate(
        """async ({api, token}) => {
            const { ImageServiceClient } = window.imageService;
            const client = new ImageServiceClient({ apiUrl: api, token, sleep: async () => {} });
            const outcome = {};
            try {
                await client.createImage({ filename: "a.jpg", contentType: "image/jpeg", size: 10 });
                outcome.create = "ok";
            }
            catch (e) { outcome.create = e.code; }
            try { await fetch(api + "/health"); outcome.health = "read"; } catch (e) { outcome.health = e.name; }
            return outcome;
        }""",
        {"api": stack.api_url, "token": local_token(user)},
    )

    assert result == {"create": "network_error", "health": "TypeError"}
    assert any("blocked by CORS policy" in error for error in console_errors), console_errors
    # Nothing was created: the preflight was refused, so the POST was never sent.
    listed = requests.get(
        f"{stack.api_url}/images", headers={"Authorization": f"Bearer {local_token(user)}"}, timeout=30
    )
    assert listed.json()["images"] == []


@pytest.mark.skipif(not UPPY_DIST.is_dir(), reason="Uppy is not installed: cd tests/e2e/uppy && npm ci")
def test_two_photos_dropped_into_uppys_dashboard_complete_as_the_users_images(
    stack: RunningStack, gallery_site: int, browser: tuple[Page, list[str]]
) -> None:
    page, _ = browser
    user = f"uppy-{uuid.uuid4().hex[:8]}"
    token = local_token(user)
    page.goto(f"http://localhost:{gallery_site}/uppy.html?api={stack.api_url}&token={token}")
    page.wait_for_function("() => window.uppy !== undefined")
    photos = [
        {"name": "dunes.jpg", "bytes": list(_jpeg(640, 480, (200, 170, 90)))},
        {"name": "lake.jpg", "bytes": list(_jpeg(480, 640, (40, 110, 150)))},
    ]
    dropped = page.evaluate_handle(
        """(photos) => {
            const transfer = new DataTransfer();
            for (const p of photos) {
                transfer.items.add(new File([new Uint8Array(p.bytes)], p.name, { type: "image/jpeg" }));
            }
            return transfer;
        }""",
        photos,
    )
    page.dispatch_event(".uppy-Dashboard-inner", "dragover", {"dataTransfer": dropped})
    page.dispatch_event(".uppy-Dashboard-inner", "drop", {"dataTransfer": dropped})
    expect(page.locator(".uppy-Dashboard-Item")).to_have_count(2)
    page.get_by_role("button", name="Upload 2 files").click()

    done = page.locator("#done li[data-status=completed]")
    expect(done).to_have_count(2, timeout=120_000)
    image_ids = [done.nth(i).get_attribute("data-image-id") for i in range(2)]
    mine = {"Authorization": f"Bearer {token}"}
    records = [
        requests.get(f"{stack.api_url}/images/{image_id}", headers=mine, timeout=30).json() for image_id in image_ids
    ]
    assert sorted(r["originalFilename"] for r in records) == ["dunes.jpg", "lake.jpg"]
    assert {(r["userId"], r["status"]) for r in records} == {(user, "completed")}
    someone_else = {"Authorization": f"Bearer {local_token('someone-else')}"}
    for image_id in image_ids:
        assert requests.get(f"{stack.api_url}/images/{image_id}", headers=someone_else, timeout=30).status_code in (
            403,
            404,
        )
