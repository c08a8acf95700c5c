// Image Service browser client: one ES module, no dependencies, no build step.
// Types: image-service.d.ts beside it. Guide: docs/clients.md.
//
//   import { ImageServiceClient } from "./image-service.js";
//   const client = new ImageServiceClient({ apiUrl: "https://images.example.com", token: () => session.token });
//   const image = await client.uploadImage(file, { onProgress: (p) => bar.value = p.fraction });
//
// It behaves as the CLI does (scripts/upload.py, scripts/image_client.py): the create is
// idempotent under a key derived from the file, 429/502/503/504 are retried honouring
// Retry-After, a replay whose image expired, failed processing or was deleted goes on to
// the next key, and the status is polled with backoff until it is terminal.

const RETRYABLE = new Set([429, 502, 503, 504]);
const MAX_ATTEMPTS = 5;
const MAX_RETRY_DELAY_MS = 20000;
const STORAGE_ATTEMPTS = 3;
const MAX_UPLOADS_AGAIN = 5;
const TERMINAL = new Set(["completed", "failed", "expired"]);
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 2000;
const CONTENT_TYPES = {
  ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif",
  ".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif",
};

/** An error answer of the API (its body's `error`), a refused upload, or an image that did not complete. */
export class ImageServiceError extends Error {
  constructor(message, { status = 0, code = "error", requestId = null, details = null, image = null } = {}) {
    super(message);
    this.name = "ImageServiceError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
    this.image = image;
  }
}

const defaultSleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });

/** Retry-After seconds when the answer has them (at most 20), else a jittered doubling from 250 ms. */
export function retryDelayMs(response, attempt) {
  const value = response?.headers?.get("Retry-After");
  const seconds = Number(value);
  if (value !== null && value !== undefined && value.trim() !== "" && Number.isFinite(seconds)) {
    return Math.min(Math.max(seconds, 0) * 1000, MAX_RETRY_DELAY_MS);
  }
  return Math.min(250 * 2 ** attempt, MAX_RETRY_DELAY_MS) * (0.5 + Math.random() / 2);
}

async function sha256Hex(data) {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The CLI's key: `sha256-<hex of the bytes>-<12 hex of the name>`, then `-r1`, `-r2`... for the next uploads. */
export async function idempotencyKey(file, attempt = 0) {
  const content = await sha256Hex(await file.arrayBuffer());
  const name = await sha256Hex(new TextEncoder().encode(file.name));
  return `sha256-${content}-${name.slice(0, 12)}` + (attempt ? `-r${attempt}` : "");
}

/** The Content-Type to declare: from the extension (as the CLI), else the browser's guess. */
export function contentTypeOf(file) {
  const dot = file.name.lastIndexOf(".");
  const extension = dot >= 0 ? file.name.slice(dot).toLowerCase() : "";
  return CONTENT_TYPES[extension] || file.type || "application/octet-stream";
}

/** A replay that is an image to upload again: the file never arrived, or no delivery could process it. */
function uploadAgain(created) {
  if (created.upload) return false;
  if (created.status === "expired") return true;
  return created.status === "failed" && created.image?.error?.code === "processing_failed";
}

export class ImageServiceClient {
  /**
   * @param {object} options
   * @param {string} [options.apiUrl] the API's base URL; "" (the default) is the page's own origin
   * @param {string | (() => string | Promise<string>)} options.token the bearer token, or a function giving a fresh one
   */
  constructor({ apiUrl = "", token, fetch: fetchImpl, sleep } = {}) {
    this.apiUrl = apiUrl.replace(/\/+$/, "");
    this._token = token;
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);
    this._sleep = sleep || defaultSleep;
  }

  async _authorization() {
    const token = typeof this._token === "function" ? await this._token() : this._token;
    if (!token) throw new ImageServiceError("No access token.", { status: 401, code: "unauthorized" });
    return "Bearer " + token;
  }

  /**
   * One API call, retried on 429/502/503/504 (Retry-After honoured) and, when repeating it is
   * harmless (`repeatable`), on a failed connection; at most 5 tries. Resolves to
   * `{status, headers, body}` for a 2xx answer; rejects with ImageServiceError otherwise.
   */
  async request(method, path, { body, headers = {}, repeatable = method === "GET", signal } = {}) {
    const init = { method, signal, headers: { Authorization: await this._authorization(), ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    for (let attempt = 0; ; attempt++) {
      const last = attempt === MAX_ATTEMPTS - 1;
      try {
        response = await this._fetch(this.apiUrl + path, init);
      } catch (error) {
        if (signal?.aborted || !repeatable || last) {
          if (signal?.aborted) throw error;
          // A refused CORS preflight looks the same as being offline: the browser says no more.
          throw new ImageServiceError(`The API could not be reached (${error.message || error}).`, { code: "network_error" });
        }
        await this._sleep(retryDelayMs(null, attempt), signal);
        continue;
      }
      if (!RETRYABLE.has(response.status) || last) break;
      await this._sleep(retryDelayMs(response, attempt), signal);
    }
    let parsed = null;
    if (response.status !== 204) {
      const text = await response.text();
      try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    }
    if (!response.ok) {
      const error = parsed && parsed.error ? parsed.error : {};
      throw new ImageServiceError(error.message || `The API answered ${response.status}.`, {
        status: response.status,
        code: error.code || "error",
        requestId: error.requestId || response.headers.get("X-Request-Id"),
        details: error.details || null,
      });
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** POST /images under `idempotencyKey` (none: not retried after a lost connection). */
  async createImage({ filename, contentType, size, ...metadata }, { idempotencyKey: key, signal } = {}) {
    const { body } = await this.request("POST", "/images", {
      body: { filename, contentType, size, ...metadata },
      headers: key ? { "Idempotency-Key": key } : {},
      repeatable: Boolean(key),
      signal,
    });
    return body;
  }

  /** Create for `file` under its key; a replay of an image that will not complete moves on to the next key. */
  async createForFile(file, { metadata = {}, signal } = {}) {
    const request = { filename: file.name, contentType: contentTypeOf(file), size: file.size, ...metadata };
    for (let attempt = 0; ; attempt++) {
      const last = attempt === MAX_UPLOADS_AGAIN;
      let created;
      try {
        created = await this.createImage(request, { idempotencyKey: await idempotencyKey(file, attempt), signal });
      } catch (error) {
        // The key's image was deleted: a new upload needs a new key.
        if (error instanceof ImageServiceError && error.status === 404 && error.code === "not_found" && !last) continue;
        throw error;
      }
      if (last || !uploadAgain(created)) return created;
    }
  }

  /**
   * POST the file to the presigned form (fields first, the file last, as S3 requires), with
   * progress events: `onProgress({loaded, total, fraction})` in bytes of the file.
   * S3's 500 and 503 (SlowDown) are retried.
   */
  async uploadToStorage(upload, file, { onProgress, signal } = {}) {
    for (let attempt = 0; ; attempt++) {
      const last = attempt === STORAGE_ATTEMPTS - 1;
      const status = await this._post(upload, file, onProgress, signal);
      if (status >= 200 && status < 300) return;
      if (last || (status !== 0 && status !== 500 && status !== 503)) {
        throw new ImageServiceError(
          status ? `Storage refused the upload (HTTP ${status}).` : "The upload could not reach storage.",
          { status, code: "upload_rejected" },
        );
      }
      await this._sleep(retryDelayMs(null, attempt), signal);
    }
  }

  _post(upload, file, onProgress, signal) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open(upload.method || "POST", upload.url);
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable || !onProgress) return;
        // The body is the fields plus the file: report the file's share of it.
        const loaded = Math.round((file.size * event.loaded) / event.total);
        onProgress({ loaded, total: file.size, fraction: event.loaded / event.total });
      });
      xhr.addEventListener("load", () => resolve(xhr.status));
      xhr.addEventListener("error", () => resolve(0));
      xhr.addEventListener("abort", () => reject(signal?.reason ?? new DOMException("Aborted", "AbortError")));
      signal?.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(form);
    });
  }

  /** GET /images/{id}/status with backoff (250 ms doubling to 2 s) until it is terminal. */
  async waitForImage(id, { timeoutMs = 5 * 60 * 1000, onStatus, signal } = {}) {
    const deadline = Date.now() + timeoutMs;
    let delay = POLL_FIRST_MS;
    for (;;) {
      const { body: status } = await this.request("GET", `/images/${encodeURIComponent(id)}/status`, { signal });
      onStatus?.(status);
      if (TERMINAL.has(status.status)) return status;
      if (Date.now() > deadline) {
        throw new ImageServiceError(`Image ${id} still ${status.status} after ${Math.round(timeoutMs / 1000)} s.`, {
          code: "timeout",
        });
      }
      await this._sleep(delay, signal);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  }

  /**
   * The whole upload: create (idempotent), send the file, wait for processing; resolves to the
   * Image. Rejects with ImageServiceError (its `image` set) when the image failed or expired.
   * `onPhase(phase, created)`: "creating", "uploading", "processing".
   */
  async uploadImage(file, { metadata, onProgress, onPhase, onStatus, timeoutMs, signal } = {}) {
    onPhase?.("creating");
    const created = await this.createForFile(file, { metadata, signal });
    if (created.upload) {
      onPhase?.("uploading", created);
      await this.uploadToStorage(created.upload, file, { onProgress, signal });
    }
    onProgress?.({ loaded: file.size, total: file.size, fraction: 1 });
    onPhase?.("processing", created);
    const status = await this.waitForImage(created.id, { timeoutMs, onStatus, signal });
    const image = await this.getImage(created.id, { signal });
    if (status.status !== "completed") {
      const why = status.error ? status.error : { code: "expired", message: "The upload window closed before the file arrived." };
      throw new ImageServiceError(why.message, { code: why.code, image });
    }
    return image;
  }

  async getImage(id, { signal } = {}) {
    return (await this.request("GET", `/images/${encodeURIComponent(id)}`, { signal })).body;
  }

  /** GET /images, one page: `{images, nextCursor}`. */
  async listImages({ limit, cursor, albumId, signal } = {}) {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set("limit", String(limit));
    if (cursor) query.set("cursor", cursor);
    if (albumId) query.set("albumId", albumId);
    const suffix = query.toString() ? "?" + query : "";
    return (await this.request("GET", "/images" + suffix, { signal })).body;
  }

  /** PATCH under If-Match: `version` is the image's version (its ETag); a stale one is a 409 version_conflict. */
  async updateImage(id, changes, { version, signal } = {}) {
    const headers = version === undefined ? {} : { "If-Match": `"${version}"` };
    return (await this.request("PATCH", `/images/${encodeURIComponent(id)}`, { body: changes, headers, signal })).body;
  }

  async deleteImage(id, { signal } = {}) {
    await this.request("DELETE", `/images/${encodeURIComponent(id)}`, { signal });
  }
}

// --- ThumbHash decoding (the `thumbhash` field) ------------------------------------------
// thumbHashToRGBA, thumbHashToApproximateAspectRatio and rgbaToDataURL are ported
// unchanged in behaviour from the reference thumbhash.js 0.1.1 by Evan Wallace,
// https://github.com/evanw/thumbhash, under the MIT licence:
//
//   Copyright (c) 2023 Evan Wallace
//
//   Permission is hereby granted, free of charge, to any person obtaining a copy of this
//   software and associated documentation files (the "Software"), to deal in the Software
//   without restriction, including without limitation the rights to use, copy, modify,
//   merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
//   permit persons to whom the Software is furnished to do so, subject to the following
//   conditions:
//
//   The above copyright notice and this permission notice shall be included in all copies
//   or substantial portions of the Software.
//
//   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
//   INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
//   PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
//   HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
//   CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
//   THE USE OR OTHER DEALINGS IN THE SOFTWARE.

/** The bytes of a base64 ThumbHash (the API's `thumbhash`). */
export function thumbHashBytes(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Decodes ThumbHash bytes to at most 32x32 RGBA pixels (not premultiplied): `{w, h, rgba}`. */
export function thumbHashToRGBA(hash) {
  const { PI, min, max, cos, round } = Math;

  // Read the constants
  const header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const header16 = hash[3] | (hash[4] << 8);
  const l_dc = (header24 & 63) / 63;
  const p_dc = ((header24 >> 6) & 63) / 31.5 - 1;
  const q_dc = ((header24 >> 12) & 63) / 31.5 - 1;
  const l_scale = ((header24 >> 18) & 31) / 31;
  const hasAlpha = header24 >> 23;
  const p_scale = ((header16 >> 3) & 63) / 63;
  const q_scale = ((header16 >> 9) & 63) / 63;
  const isLandscape = header16 >> 15;
  const lx = max(3, isLandscape ? (hasAlpha ? 5 : 7) : header16 & 7);
  const ly = max(3, isLandscape ? header16 & 7 : hasAlpha ? 5 : 7);
  const a_dc = hasAlpha ? (hash[5] & 15) / 15 : 1;
  const a_scale = (hash[5] >> 4) / 15;

  // Read the varying factors (boost saturation by 1.25x to compensate for quantization)
  const ac_start = hasAlpha ? 6 : 5;
  let ac_index = 0;
  const decodeChannel = (nx, ny, scale) => {
    const ac = [];
    for (let cy = 0; cy < ny; cy++)
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++)
        ac.push((((hash[ac_start + (ac_index >> 1)] >> ((ac_index++ & 1) << 2)) & 15) / 7.5 - 1) * scale);
    return ac;
  };
  const l_ac = decodeChannel(lx, ly, l_scale);
  const p_ac = decodeChannel(3, 3, p_scale * 1.25);
  const q_ac = decodeChannel(3, 3, q_scale * 1.25);
  const a_ac = hasAlpha && decodeChannel(5, 5, a_scale);

  // Decode using the DCT into RGB
  const ratio = thumbHashToApproximateAspectRatio(hash);
  const w = round(ratio > 1 ? 32 : 32 * ratio);
  const h = round(ratio > 1 ? 32 / ratio : 32);
  const rgba = new Uint8Array(w * h * 4);
  const fx = [];
  const fy = [];
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      let l = l_dc;
      let p = p_dc;
      let q = q_dc;
      let a = a_dc;

      // Precompute the coefficients
      for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++) fx[cx] = cos((PI / w) * (x + 0.5) * cx);
      for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++) fy[cy] = cos((PI / h) * (y + 0.5) * cy);

      // Decode L
      for (let cy = 0, j = 0; cy < ly; cy++)
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++) l += l_ac[j] * fx[cx] * fy2;

      // Decode P and Q
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
          const f = fx[cx] * fy2;
          p += p_ac[j] * f;
          q += q_ac[j] * f;
        }
      }

      // Decode A
      if (hasAlpha)
        for (let cy = 0, j = 0; cy < 5; cy++)
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++) a += a_ac[j] * fx[cx] * fy2;

      // Convert to RGB
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      rgba[i] = max(0, 255 * min(1, r));
      rgba[i + 1] = max(0, 255 * min(1, g));
      rgba[i + 2] = max(0, 255 * min(1, b));
      rgba[i + 3] = max(0, 255 * min(1, a));
    }
  }
  return { w, h, rgba };
}

/** The original image's approximate aspect ratio (width / height) from ThumbHash bytes. */
export function thumbHashToApproximateAspectRatio(hash) {
  const header = hash[3];
  const hasAlpha = hash[2] & 0x80;
  const isLandscape = hash[4] & 0x80;
  const lx = isLandscape ? (hasAlpha ? 5 : 7) : header & 7;
  const ly = isLandscape ? header & 7 : hasAlpha ? 5 : 7;
  return lx / ly;
}

/** An uncompressed PNG data URL of w x h (each <= 100) RGBA pixels, not premultiplied. */
export function rgbaToDataURL(w, h, rgba) {
  const row = w * 4 + 1;
  const idat = 6 + h * (5 + row);
  const bytes = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, w >> 8, w & 255, 0, 0, h >> 8, h & 255, 8, 6,
    0, 0, 0, 0, 0, 0, 0, idat >>> 24, (idat >> 16) & 255, (idat >> 8) & 255, idat & 255, 73, 68, 65, 84, 120, 1,
  ];
  const table = [
    0, 498536548, 997073096, 651767980, 1994146192, 1802195444, 1303535960, 1342533948, -306674912, -267414716,
    -690576408, -882789492, -1687895376, -2032938284, -1609899400, -1111625188,
  ];
  let a = 1;
  let b = 0;
  for (let y = 0, i = 0, end = row - 1; y < h; y++, end += row - 1) {
    bytes.push(y + 1 < h ? 0 : 1, row & 255, row >> 8, ~row & 255, (row >> 8) ^ 255, 0);
    for (b = (b + a) % 65521; i < end; i++) {
      const u = rgba[i] & 255;
      bytes.push(u);
      a = (a + u) % 65521;
      b = (b + a) % 65521;
    }
  }
  bytes.push(b >> 8, b & 255, a >> 8, a & 255, 0, 0, 0, 0, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130);
  for (let [start, end] of [
    [12, 29],
    [37, 41 + idat],
  ]) {
    let c = ~0;
    for (let i = start; i < end; i++) {
      c ^= bytes[i];
      c = (c >>> 4) ^ table[c & 15];
      c = (c >>> 4) ^ table[c & 15];
    }
    c = ~c;
    bytes[end++] = c >>> 24;
    bytes[end++] = (c >> 16) & 255;
    bytes[end++] = (c >> 8) & 255;
    bytes[end++] = c & 255;
  }
  return "data:image/png;base64," + btoa(String.fromCharCode(...bytes));
}

/** A PNG data URL of the placeholder a ThumbHash (bytes, or the API's base64 string) describes. */
export function thumbHashToDataURL(hash) {
  const image = thumbHashToRGBA(typeof hash === "string" ? thumbHashBytes(hash) : hash);
  return rgbaToDataURL(image.w, image.h, image.rgba);
}
