"use strict";
// The web UI's words, in Chinese (the default) and English. Voice and emotion names the
// table lacks are shown as the engine names them; error codes it lacks show the server's
// own message.
window.TTS_I18N = {
  "zh-CN": {
    title: "语音合成", loading: "加载中…", text: "文本", characters: "字", voice: "音色",
    emotion: "情感", speed: "语速", format: "格式", synthesise: "合成", hint: "Ctrl+Enter 合成",
    download: "下载", switchTo: "English",
    engine: (e, d) => `引擎 ${e}（${d}）`,
    working: "合成中…",
    done: (first, total, audio, cached) =>
      `首段音频 ${first} 毫秒 · 总耗时 ${total} 毫秒 · 音频 ${audio} 秒${cached ? "（来自缓存）" : ""}`,
    failed: (why) => `请求失败：${why}`,
    noCatalog: (why) => `无法加载音色列表：${why}`,
    voices: {
      "mandarin-female": "普通话女声", "mandarin-male": "普通话男声",
      zhitian_emo: "知甜（女声，多情感）", zhiyan_emo: "知燕（女声，多情感）",
      zhizhe_emo: "知哲（男声，多情感）", zhibei_emo: "知贝（童声，多情感）",
    },
    emotions: {
      neutral: "中性", happy: "开心", sad: "悲伤", angry: "生气", calm: "平静", fear: "害怕",
      hate: "厌恶", surprise: "惊讶", arousal: "激动",
    },
    errors: {
      text_too_long: (e) => `文本太长：上限为 ${e.max_chars} 个字。`,
      empty_text: () => "请输入要合成的文本。",
      control_characters: () => "文本中含有控制字符，请删除后重试。",
      unknown_voice: () => "不支持这个音色。",
      unknown_emotion: () => "不支持这个情感。",
      invalid_speed: (e) => `语速须在 ${e.min} 到 ${e.max} 之间。`,
      overloaded: () => "服务繁忙，请稍后重试。",
      draining: () => "服务正在重启，请稍后重试。",
      engine_loading: () => "语音引擎正在加载，请稍后重试。",
      engine_failed: (e) => `语音引擎无法启动：${e.message}`,
      engine_failure: () => "合成失败，请重试。",
      body_too_large: () => "请求太大。",
    },
    http: (status) => `HTTP ${status}`,
  },
  en: {
    title: "Text to speech", loading: "loading…", text: "Text", characters: "characters",
    voice: "Voice", emotion: "Emotion", speed: "Speed", format: "Format",
    synthesise: "Synthesise", hint: "Ctrl+Enter synthesises", download: "Download",
    switchTo: "中文",
    engine: (e, d) => `engine ${e} on ${d}`,
    working: "synthesising…",
    done: (first, total, audio, cached) =>
      `first audio ${first} ms · latency ${total} ms · audio ${audio} s${cached ? " (from cache)" : ""}`,
    failed: (why) => `request failed: ${why}`,
    noCatalog: (why) => `cannot load voices: ${why}`,
    voices: {}, emotions: {}, errors: {},
    http: (status) => `HTTP ${status}`,
  },
};
