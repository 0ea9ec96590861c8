/*
 * Scan viewer: shows a finished scan's binary STL with WebGL.
 *
 * Drag to orbit, wheel or pinch to zoom, right-drag or shift-drag to pan; with the keyboard,
 * arrows turn, + and - zoom and 0 resets.
 * Every element with a data-stl-url attribute becomes a viewer; the texts it shows
 * come from its data-msg-* attributes (translated by the page). The last viewer
 * started is exposed as window.fablabViewer (state, stats, drawnPixels()).
 */
(function () {
  "use strict";

  // --- Vectors and 4x4 matrices (column-major, as WebGL expects) --------------------

  const vec3 = {
    add: (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]],
    sub: (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]],
    scale: (a, s) => [a[0] * s, a[1] * s, a[2] * s],
    dot: (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2],
    cross: (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]],
    normalize(a) {
      const length = Math.hypot(a[0], a[1], a[2]);
      return length > 0 ? [a[0] / length, a[1] / length, a[2] / length] : [0, 0, 1];
    },
  };

  const mat4 = {
    perspective(fovy, aspect, near, far) {
      const f = 1 / Math.tan(fovy / 2), depth = 1 / (near - far);
      return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * depth, -1,
        0, 0, 2 * far * near * depth, 0]);
    },
    lookAt(eye, target, up) {
      const z = vec3.normalize(vec3.sub(eye, target));
      const x = vec3.normalize(vec3.cross(up, z));
      const y = vec3.cross(z, x);
      return new Float32Array([x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
        -vec3.dot(x, eye), -vec3.dot(y, eye), -vec3.dot(z, eye), 1]);
    },
    // The upper-left 3x3: turns normals into view space (the view has no scaling).
    rotation3(m) {
      return new Float32Array([m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]]);
    },
  };

  // --- Binary STL --------------------------------------------------------------------

  class StlError extends Error {
    constructor(code) {
      super(code);
      this.code = code; // "invalid", "ascii", "empty", "too-large"
    }
  }

  /* Triangles of a binary STL as flat Float32Arrays, with face normals and the bounding box. */
  function decodeStl(buffer, maxTriangles) {
    const data = new DataView(buffer);
    const count = buffer.byteLength >= 84 ? data.getUint32(80, true) : -1;
    if (count < 0 || 84 + 50 * count > buffer.byteLength) {
      const head = String.fromCharCode(...new Uint8Array(buffer, 0, Math.min(5, buffer.byteLength)));
      throw new StlError(head.toLowerCase() === "solid" ? "ascii" : "invalid");
    }
    if (count === 0) throw new StlError("empty");
    if (count > maxTriangles) throw new StlError("too-large");
    const positions = new Float32Array(count * 9), normals = new Float32Array(count * 9);
    const min = [Infinity, Infinity, Infinity], max = [-Infinity, -Infinity, -Infinity];
    for (let t = 0; t < count; t++) {
      const offset = 84 + 50 * t + 12, base = 9 * t; // skip the stored normal: often zero or stale
      for (let k = 0; k < 9; k++) {
        const value = data.getFloat32(offset + 4 * k, true);
        if (!Number.isFinite(value)) throw new StlError("invalid");
        positions[base + k] = value;
        const axis = k % 3;
        if (value < min[axis]) min[axis] = value;
        if (value > max[axis]) max[axis] = value;
      }
      const p = positions;
      const n = vec3.normalize(vec3.cross(
        [p[base + 3] - p[base], p[base + 4] - p[base + 1], p[base + 5] - p[base + 2]],
        [p[base + 6] - p[base], p[base + 7] - p[base + 1], p[base + 8] - p[base + 2]]));
      for (let v = 0; v < 3; v++) normals.set(n, base + 3 * v);
    }
    return { positions, normals, count, min, max };
  }

  /* Grid lines on the bed (z = 0) under a footprint of sizeX x sizeY, centred on the origin. */
  function gridLines(sizeX, sizeY) {
    const span = Math.max(sizeX, sizeY, 1e-6) * 1.6;
    const rough = span / 12, power = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
    const lines = Math.ceil(span / 2 / step), half = lines * step, z = -span * 1e-4;
    const points = [];
    for (let i = -lines; i <= lines; i++) {
      points.push(i * step, -half, z, i * step, half, z, -half, i * step, z, half, i * step, z);
    }
    return { points: new Float32Array(points), step, half };
  }

  // --- Shaders -----------------------------------------------------------------------

  const VERTEX_SHADER = `
    attribute vec3 a_position;
    attribute vec3 a_normal;
    uniform mat4 u_projection;
    uniform mat4 u_view;
    uniform mat3 u_rotation;
    varying vec3 v_normal;
    varying vec3 v_eye;
    void main() {
      vec4 eye = u_view * vec4(a_position, 1.0);
      v_eye = eye.xyz;
      v_normal = u_rotation * a_normal;
      gl_Position = u_projection * eye;
    }`;

  // A light at the camera (headlight) plus ambient; both faces lit, so flipped triangles still show.
  const FRAGMENT_SHADER = `
    precision mediump float;
    uniform vec3 u_color;
    uniform bool u_lit;
    varying vec3 v_normal;
    varying vec3 v_eye;
    void main() {
      if (!u_lit) { gl_FragColor = vec4(u_color, 1.0); return; }
      float facing = abs(dot(normalize(v_normal), normalize(-v_eye)));
      vec3 color = u_color * (0.3 + 0.7 * facing) + vec3(0.25) * pow(facing, 40.0);
      gl_FragColor = vec4(color, 1.0);
    }`;

  const BACKGROUND = [0.96, 0.97, 0.98];
  const MODEL_COLOR = [0.16, 0.55, 0.53];
  const GRID_COLOR = [0.74, 0.77, 0.8];
  const FOV = Math.PI / 4;
  const HOME = { yaw: -Math.PI / 2 - Math.PI / 6, pitch: Math.PI / 7 };

  function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }

  function program(gl) {
    const p = gl.createProgram();
    gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
    const uniforms = {};
    for (const name of ["u_projection", "u_view", "u_rotation", "u_color", "u_lit"]) {
      uniforms[name] = gl.getUniformLocation(p, name);
    }
    return { p, uniforms, position: gl.getAttribLocation(p, "a_position"), normal: gl.getAttribLocation(p, "a_normal") };
  }

  function buffer(gl, data) {
    const b = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, b);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    return b;
  }

  // --- The viewer ----------------------------------------------------------------------

  class Viewer {
    constructor(root) {
      this.root = root;
      this.canvas = root.querySelector("canvas");
      this.message = root.querySelector("[data-role=message]");
      this.sizeLabel = root.querySelector("[data-role=size]");
      this.maxBytes = Number(root.dataset.maxBytes) || 100 * 1024 * 1024;
      this.stats = { state: "starting", triangles: 0, sizeMm: null, frames: 0, error: null };
      this.pointers = new Map();
      this.view = { ...HOME, distance: 1, target: [0, 0, 0] };
      this.pending = false;
    }

    text(name, values) {
      let text = this.root.dataset[name] || name;
      for (const [key, value] of Object.entries(values || {})) text = text.replace(`{${key}}`, value);
      return text;
    }

    fail(code, detail) {
      this.stats.state = "error";
      this.stats.error = code;
      this.show(this.text({ "no-webgl": "msgNoWebgl", "too-large": "msgTooLarge", ascii: "msgAscii",
        empty: "msgEmpty", invalid: "msgInvalid" }[code] || "msgFailed", detail));
      this.canvas.hidden = code === "no-webgl";
    }

    show(text) {
      this.message.textContent = text || "";
      this.message.hidden = !text;
    }

    async start() {
      const gl = this.canvas.getContext("webgl", { antialias: true, preserveDrawingBuffer: true }) ||
        this.canvas.getContext("experimental-webgl", { preserveDrawingBuffer: true });
      if (!gl) return this.fail("no-webgl");
      this.gl = gl;
      this.canvas.addEventListener("webglcontextlost", (event) => { event.preventDefault(); this.fail("no-webgl"); });
      const announced = Number(this.root.dataset.stlBytes);
      if (announced > this.maxBytes) return this.fail("too-large");
      this.stats.state = "loading";
      let mesh;
      try {
        mesh = decodeStl(await this.download(this.root.dataset.stlUrl), Math.floor((this.maxBytes - 84) / 50));
      } catch (error) {
        return this.fail(error instanceof StlError ? error.code : "failed");
      }
      this.setUp(mesh);
      this.show("");
      this.stats.state = "ready";
      this.render();
    }

    /* The STL's bytes, with the share received shown while it loads. */
    async download(url) {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "model/stl" } });
      if (!response.ok || (response.headers.get("Content-Type") || "").startsWith("text/html")) {
        throw new Error(`HTTP ${response.status}`);
      }
      const total = Number(response.headers.get("Content-Length")) || 0;
      if (total > this.maxBytes) throw new StlError("too-large");
      if (!response.body || !total || response.headers.get("Content-Encoding")) return response.arrayBuffer();
      const bytes = new Uint8Array(total), reader = response.body.getReader();
      let received = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (received + value.length > total) throw new StlError("invalid");
        bytes.set(value, received);
        received += value.length;
        this.show(this.text("msgLoading", { percent: Math.round((100 * received) / total) }));
      }
      return received === total ? bytes.buffer : bytes.buffer.slice(0, received);
    }

    setUp(mesh) {
      const gl = this.gl, size = vec3.sub(mesh.max, mesh.min);
      // Stand the model on the bed (z = 0), centred over the origin.
      const shift = [-(mesh.min[0] + mesh.max[0]) / 2, -(mesh.min[1] + mesh.max[1]) / 2, -mesh.min[2]];
      for (let i = 0; i < mesh.positions.length; i += 3) {
        mesh.positions[i] += shift[0];
        mesh.positions[i + 1] += shift[1];
        mesh.positions[i + 2] += shift[2];
      }
      this.program = program(gl);
      this.mesh = { positions: buffer(gl, mesh.positions), normals: buffer(gl, mesh.normals), count: mesh.count * 3 };
      const grid = gridLines(size[0], size[1]);
      this.grid = { positions: buffer(gl, grid.points), count: grid.points.length / 3 };
      this.radius = Math.max(Math.hypot(size[0], size[1], size[2]) / 2, 1e-3);
      this.sceneRadius = Math.max(this.radius, Math.hypot(grid.half, grid.half, size[2]));
      this.home = { ...HOME, distance: (this.radius / Math.sin(FOV / 2)) * 1.15, target: [0, 0, size[2] / 2] };
      this.stats.triangles = mesh.count;
      this.stats.sizeMm = size.map((v) => Math.round(v * 10) / 10);
      this.stats.gridStepMm = grid.step;
      if (this.sizeLabel) {
        const [x, y, z] = this.stats.sizeMm.map((v) => v.toLocaleString(document.documentElement.lang || undefined,
          { maximumFractionDigits: 1, minimumFractionDigits: 1 }));
        this.sizeLabel.textContent = this.text("msgSize", { x, y, z, grid: grid.step });
      }
      this.reset();
      this.listen();
      new ResizeObserver(() => this.requestRender()).observe(this.canvas);
    }

    reset() {
      this.view = { ...this.home, target: [...this.home.target] };
      this.requestRender();
    }

    eye() {
      const { yaw, pitch, distance, target } = this.view;
      return vec3.add(target, vec3.scale([Math.cos(pitch) * Math.cos(yaw), Math.cos(pitch) * Math.sin(yaw),
        Math.sin(pitch)], distance));
    }

    orbit(dx, dy) {
      this.view.yaw -= dx * 0.008;
      this.view.pitch = Math.max(-1.55, Math.min(1.55, this.view.pitch + dy * 0.008));
      this.requestRender();
    }

    zoom(factor) {
      this.view.distance = Math.max(this.radius * 0.05, Math.min(this.radius * 40, this.view.distance * factor));
      this.requestRender();
    }

    pan(dx, dy) {
      const eye = this.eye(), forward = vec3.normalize(vec3.sub(this.view.target, eye));
      const right = vec3.normalize(vec3.cross(forward, [0, 0, 1])), up = vec3.cross(right, forward);
      const perPixel = (2 * this.view.distance * Math.tan(FOV / 2)) / (this.canvas.clientHeight || 1);
      this.view.target = vec3.add(this.view.target, vec3.add(vec3.scale(right, -dx * perPixel),
        vec3.scale(up, dy * perPixel)));
      this.requestRender();
    }

    listen() {
      const canvas = this.canvas;
      canvas.addEventListener("contextmenu", (event) => event.preventDefault());
      canvas.addEventListener("pointerdown", (event) => {
        canvas.setPointerCapture(event.pointerId);
        this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY,
          pan: event.button === 2 || event.button === 1 || event.shiftKey });
      });
      canvas.addEventListener("pointermove", (event) => {
        const last = this.pointers.get(event.pointerId);
        if (!last) return;
        const dx = event.clientX - last.x, dy = event.clientY - last.y;
        if (this.pointers.size === 2) {
          const [a, b] = [...this.pointers.values()];
          const before = Math.hypot(a.x - b.x, a.y - b.y);
          last.x = event.clientX;
          last.y = event.clientY;
          const after = Math.hypot(a.x - b.x, a.y - b.y);
          if (before > 0 && after > 0) this.zoom(before / after);
          this.pan(dx / 2, dy / 2);
          return;
        }
        last.x = event.clientX;
        last.y = event.clientY;
        if (last.pan || event.shiftKey) this.pan(dx, dy); else this.orbit(dx, dy);
      });
      const release = (event) => this.pointers.delete(event.pointerId);
      canvas.addEventListener("pointerup", release);
      canvas.addEventListener("pointercancel", release);
      canvas.addEventListener("wheel", (event) => {
        event.preventDefault();
        const lines = event.deltaMode === 1 ? 33 : event.deltaMode === 2 ? 400 : 1;
        this.zoom(Math.exp(Math.max(-100, Math.min(100, event.deltaY * lines)) * 0.002));
      }, { passive: false });
      canvas.addEventListener("dblclick", () => this.reset());
      const keys = { ArrowLeft: () => this.orbit(-20, 0), ArrowRight: () => this.orbit(20, 0),
        ArrowUp: () => this.orbit(0, -20), ArrowDown: () => this.orbit(0, 20), "+": () => this.zoom(0.85),
        "-": () => this.zoom(1 / 0.85), "0": () => this.reset() };
      canvas.addEventListener("keydown", (event) => {
        if (!keys[event.key]) return;
        event.preventDefault();
        keys[event.key]();
      });
      const resetButton = this.root.querySelector("[data-action=reset]");
      if (resetButton) resetButton.addEventListener("click", () => this.reset());
    }

    requestRender() {
      if (this.pending || !this.mesh) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.render();
      });
    }

    render() {
      const gl = this.gl, canvas = this.canvas, ratio = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
      const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
      gl.viewport(0, 0, width, height);
      gl.clearColor(...BACKGROUND, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      const { p, uniforms, position, normal } = this.program;
      gl.useProgram(p);
      const distance = this.view.distance;
      gl.uniformMatrix4fv(uniforms.u_projection, false,
        mat4.perspective(FOV, width / height, distance * 0.01, distance + this.sceneRadius * 3));
      const view = mat4.lookAt(this.eye(), this.view.target, [0, 0, 1]);
      gl.uniformMatrix4fv(uniforms.u_view, false, view);
      gl.uniformMatrix3fv(uniforms.u_rotation, false, mat4.rotation3(view));

      gl.uniform1i(uniforms.u_lit, 0);
      gl.uniform3fv(uniforms.u_color, GRID_COLOR);
      gl.disableVertexAttribArray(normal);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.grid.positions);
      gl.enableVertexAttribArray(position);
      gl.vertexAttribPointer(position, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.LINES, 0, this.grid.count);

      gl.uniform1i(uniforms.u_lit, 1);
      gl.uniform3fv(uniforms.u_color, MODEL_COLOR);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.mesh.positions);
      gl.vertexAttribPointer(position, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.mesh.normals);
      gl.enableVertexAttribArray(normal);
      gl.vertexAttribPointer(normal, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.TRIANGLES, 0, this.mesh.count);
      this.stats.frames += 1;
    }

    /* How many pixels of the last frame differ from the background (a check that something was drawn). */
    drawnPixels() {
      if (!this.mesh) return 0;
      this.render();
      const gl = this.gl, width = this.canvas.width, height = this.canvas.height;
      const pixels = new Uint8Array(width * height * 4);
      gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
      const background = BACKGROUND.map((c) => Math.round(c * 255));
      let drawn = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (Math.abs(pixels[i] - background[0]) + Math.abs(pixels[i + 1] - background[1]) +
          Math.abs(pixels[i + 2] - background[2]) > 6) drawn += 1;
      }
      return drawn;
    }
  }

  function startAll() {
    for (const root of document.querySelectorAll("[data-stl-url]")) {
      const viewer = new Viewer(root);
      window.fablabViewer = viewer;
      viewer.show(viewer.text("msgLoading", { percent: 0 }));
      viewer.start().catch(() => viewer.fail("failed"));
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
