// Photos on the phone: resized to at most 1600 px on the long side, as JPEG quality 0.8,
// hashed with SHA-256. Everything here happens before any IndexedDB transaction is opened
// (a transaction closes itself when its code awaits something else).

export const MAX_SIDE = 1600;
export const QUALITY = 0.8;

export function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256(blob) {
  return hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
}

/** The file re-encoded: turned upright (EXIF orientation), scaled down, as JPEG 0.8. */
export async function compress(file) {
  const probe = await createImageBitmap(file, {imageOrientation: "from-image"});
  const {width, height} = probe;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  let bitmap = probe;
  if (scale < 1) {
    bitmap = await createImageBitmap(file, {
      imageOrientation: "from-image", resizeQuality: "high",
      resizeWidth: Math.round(width * scale), resizeHeight: Math.round(height * scale)});
    probe.close();
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";  // a transparent PNG becomes white, not black
  ctx.fillRect(0, 0, bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  const out = {width: bitmap.width, height: bitmap.height};
  bitmap.close();
  const blob = await canvas.convertToBlob({type: "image/jpeg", quality: QUALITY});
  return {blob, ...out, original_size: file.size};
}

/** A photo ready to keep: the compressed Blob, its hash and where and when it was taken. */
export async function preparePhoto(file, location) {
  const {blob, width, height, original_size} = await compress(file);
  const hash = await sha256(blob);
  return {sha256: hash, blob, mime: "image/jpeg", size: blob.size, width, height,
          original_size, filename: file.name || "foto.jpg",
          taken_at: null, location: location || null};
}
