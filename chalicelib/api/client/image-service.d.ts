// Types of image-service.js (the Image Service browser client). The shapes are API.md's;
// GET /openapi.json has the full schemas.

export type ImageStatus = "pending" | "processing" | "completed" | "failed" | "expired";

export interface ImageErrorInfo {
  code: string;
  message: string;
}

export interface Image {
  id: string;
  userId: string;
  status: ImageStatus;
  title: string | null;
  description: string | null;
  tags: string[];
  albumId: string | null;
  originalFilename: string;
  contentType: string;
  fileSize: number;
  format: "webp";
  width?: number;
  height?: number;
  imageUrl?: string;
  thumbnailUrl?: string;
  placeholder?: string;
  /** Completed images (v1.1): the responsive ladder, smallest first (API.md "Renditions"). */
  renditions?: Rendition[];
  /** The WebP ladder as an `<img srcset>` value with `w` descriptors. */
  srcset?: string;
  /** Base64 ThumbHash: `thumbHashToDataURL(image.thumbhash)` draws it. */
  thumbhash?: string;
  /** sRGB `#rrggbb`. */
  dominantColor?: string;
  renditionVersion?: number;
  /** The owner's earliest still-existing completed image that is the same photo, else null. */
  duplicateOf?: string | null;
  error?: ImageErrorInfo;
  createdAt: string;
  updatedAt: string;
  uploadedAt?: string;
  /** Also the ETag; send it back as If-Match (`updateImage(id, changes, { version })`). */
  version: number;
}

export interface Rendition {
  width: number;
  height: number;
  format: "webp" | "avif";
  url: string;
  bytes: number;
}

export interface ImageStatusInfo {
  id: string;
  status: ImageStatus;
  updatedAt: string;
  imageUrl?: string;
  thumbnailUrl?: string;
  error?: ImageErrorInfo;
}

export interface PresignedUpload {
  method: "POST";
  url: string;
  fields: Record<string, string>;
  expiresAt: string;
}

export interface CreatedImage {
  id: string;
  status: ImageStatus;
  statusUrl: string;
  /** Absent on a replay whose file already arrived. */
  upload?: PresignedUpload;
  image: Image;
}

export interface ImageList {
  images: Image[];
  nextCursor: string | null;
}

export interface CreateImageRequest {
  filename: string;
  contentType: string;
  size: number;
  title?: string;
  description?: string;
  tags?: string[];
  albumId?: string;
}

export type ImageMetadata = Pick<CreateImageRequest, "title" | "description" | "tags" | "albumId">;

export interface ImageChanges {
  title?: string | null;
  description?: string | null;
  tags?: string[];
  albumId?: string | null;
  version?: number;
}

export interface UploadProgress {
  /** Bytes of the file sent so far. */
  loaded: number;
  /** The file's size. */
  total: number;
  /** 0 to 1, of the whole request body. */
  fraction: number;
}

export type UploadPhase = "creating" | "uploading" | "processing";

export interface ApiResponse<T> {
  status: number;
  /** Location, ETag, Retry-After and X-Request-Id are readable from another origin. */
  headers: Headers;
  body: T;
}

export interface ErrorDetail {
  field: string;
  message: string;
}

/** An API error answer (`status`, API.md's `code`), a refused upload, or an image that did not complete (`image`). */
export class ImageServiceError extends Error {
  constructor(
    message: string,
    options?: { status?: number; code?: string; requestId?: string | null; details?: ErrorDetail[] | null; image?: Image | null },
  );
  readonly name: "ImageServiceError";
  /** The HTTP status; 0 when the API or storage could not be reached (offline, or refused by CORS). */
  readonly status: number;
  /** API.md's error code, or "network_error", "upload_rejected", "timeout", an image error's code. */
  readonly code: string;
  readonly requestId: string | null;
  readonly details: ErrorDetail[] | null;
  readonly image: Image | null;
}

export interface ClientOptions {
  /** The API's base URL, e.g. "https://images.example.com"; "" (default): the page's own origin. */
  apiUrl?: string;
  /** The bearer token, or a function giving a current one (called before each request). */
  token: string | (() => string | Promise<string>);
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Retry after a failed connection too (default: GET only). */
  repeatable?: boolean;
  signal?: AbortSignal;
}

export class ImageServiceClient {
  constructor(options: ClientOptions);
  readonly apiUrl: string;
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  createImage(
    request: CreateImageRequest,
    options?: { idempotencyKey?: string; signal?: AbortSignal },
  ): Promise<CreatedImage>;
  createForFile(file: File, options?: { metadata?: ImageMetadata; signal?: AbortSignal }): Promise<CreatedImage>;
  uploadToStorage(
    upload: PresignedUpload,
    file: File,
    options?: { onProgress?: (progress: UploadProgress) => void; signal?: AbortSignal },
  ): Promise<void>;
  waitForImage(
    id: string,
    options?: { timeoutMs?: number; onStatus?: (status: ImageStatusInfo) => void; signal?: AbortSignal },
  ): Promise<ImageStatusInfo>;
  uploadImage(
    file: File,
    options?: {
      metadata?: ImageMetadata;
      onProgress?: (progress: UploadProgress) => void;
      onPhase?: (phase: UploadPhase, created?: CreatedImage) => void;
      onStatus?: (status: ImageStatusInfo) => void;
      timeoutMs?: number;
      signal?: AbortSignal;
    },
  ): Promise<Image>;
  getImage(id: string, options?: { signal?: AbortSignal }): Promise<Image>;
  listImages(options?: { limit?: number; cursor?: string; albumId?: string; signal?: AbortSignal }): Promise<ImageList>;
  updateImage(id: string, changes: ImageChanges, options?: { version?: number; signal?: AbortSignal }): Promise<Image>;
  deleteImage(id: string, options?: { signal?: AbortSignal }): Promise<void>;
}

/** `sha256-<hex of the bytes>-<12 hex of the name>`, plus `-r<attempt>` after the first. */
export function idempotencyKey(file: Blob & { name: string }, attempt?: number): Promise<string>;
export function contentTypeOf(file: Blob & { name: string }): string;
export function retryDelayMs(response: Response | null, attempt: number): number;

/** ThumbHash decoding, ported from the reference thumbhash.js (MIT). */
export function thumbHashBytes(base64: string): Uint8Array;
/** At most 32x32 RGBA pixels, not premultiplied. */
export function thumbHashToRGBA(hash: ArrayLike<number>): { w: number; h: number; rgba: Uint8Array };
export function thumbHashToApproximateAspectRatio(hash: ArrayLike<number>): number;
export function rgbaToDataURL(w: number, h: number, rgba: ArrayLike<number>): string;
/** A PNG data URL of the placeholder; `hash` is the API's base64 `thumbhash` or its bytes. */
export function thumbHashToDataURL(hash: string | ArrayLike<number>): string;
