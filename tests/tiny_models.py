"""Tiny random-weight models, built offline and saved to a folder so that backends load them by path.

Each builder (wav2vec2 and Parakeet CTC, Whisper) writes config, weights, tokenizer and feature
extractor as a hub checkpoint has them, in well under a second. The session fixtures `tiny_ctc`
and `tiny_whisper` in conftest.py build each model once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CTC_CHARS = "abcdefghijklmnopqrstuvwxyz'"
WHISPER_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>, after the special tokens, as in every Whisper


def build_tiny_ctc(path: Path, *, do_normalize: bool = True, **config: Any) -> Path:
    """A Wav2Vec2ForCTC (hidden 32, 2 layers) with a character vocabulary; `config` overrides its config."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate(CTC_CHARS)}}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=do_normalize, return_attention_mask=True
    )
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(path)
    settings = {
        "vocab_size": len(vocab),
        "pad_token_id": vocab["<pad>"],
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        # the usual 7-layer conv stack (320 samples per frame, 400 receptive), only narrow
        "conv_dim": (16,) * 7,
        "feat_extract_norm": "layer",
        "do_stable_layer_norm": True,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        **config,
    }
    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2Config(**settings)).save_pretrained(path)
    return path


def build_tiny_parakeet(path: Path, *, encoder: dict[str, Any] | None = None, pieces: int = 0) -> Path:
    """A ParakeetForCTC (FastConformer, hidden 32, 2 layers, 16 mels) with a character Unigram tokenizer;
    `encoder` overrides the encoder's config (ParakeetEncoderConfig() itself is parakeet-ctc-0.6b's),
    `pieces` more pieces pad the vocabulary to a real model's size."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        ParakeetCTCConfig,
        ParakeetEncoderConfig,
        ParakeetFeatureExtractor,
        ParakeetForCTC,
        ParakeetProcessor,
        ParakeetTokenizer,
    )

    path = Path(path)
    filler = [f"\u2581w{i}" for i in range(pieces)]
    pieces = ["<unk>", "\u2581", *CTC_CHARS, *filler, "<pad>"]  # <pad> is CTC's blank, last as in NeMo vocabularies
    backend = Tokenizer(models.Unigram([(piece, 0.0) for piece in pieces], unk_id=0))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    tokenizer = ParakeetTokenizer(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>")
    sizes = encoder if encoder is not None else {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                                 "intermediate_size": 64, "num_mel_bins": 16,
                                                 "subsampling_conv_channels": 8}
    encoder = ParakeetEncoderConfig(**sizes)
    ParakeetProcessor(feature_extractor=ParakeetFeatureExtractor(feature_size=encoder.num_mel_bins),
                      tokenizer=tokenizer, decoder_type="ctc").save_pretrained(path)
    torch.manual_seed(0)
    config = ParakeetCTCConfig(vocab_size=len(pieces), pad_token_id=len(pieces) - 1, encoder_config=encoder.to_dict())
    ParakeetForCTC(config).save_pretrained(path)
    return path


def build_tiny_whisper(path: Path, *, max_target_positions: int = 64, sizes: dict[str, Any] | None = None,
                       mels: int = 80, vocab_size: int | None = None, new_tokens: int | None = None) -> Path:
    """A multilingual WhisperForConditionalGeneration (d_model 32, 2+2 layers) with a byte-level tokenizer.

    For speed measurements: `sizes` overrides the layers' sizes (a real checkpoint's), `mels` the
    features, `vocab_size` pads the vocabulary to a real one's size, and `new_tokens` makes every
    generation exactly that long (the end-of-text token suppressed), whoever runs it.

    The tokenizer has the 256 bytes and no merges, then Whisper's special tokens in Whisper's order,
    so prompts, language detection, timestamps and long-form generation work as with real checkpoints.
    Short generations (64 tokens) keep random-weight tests fast; faster-whisper generates up to
    Whisper's 448 whatever the model, so a model for it needs those positions.
    """
    import torch
    from transformers import (
        AddedToken,
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    path = Path(path)
    byte_chars = bytes_to_unicode()
    tokenizer = WhisperTokenizer(vocab={byte_chars[b]: b for b in range(256)}, merges=[])  # adds <|endoftext|>
    languages = [f"<|{code}|>" for code in LANGUAGES]
    specials = ["<|startoftranscript|>", *languages, "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials], special_tokens=True)
    ids = dict(zip(specials, tokenizer.convert_tokens_to_ids(specials)))
    tokenizer.add_tokens([f"w{i}" for i in range((vocab_size or 0) - WHISPER_TIMESTAMPS - len(tokenizer))])
    eot = tokenizer.eos_token_id
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=mels), tokenizer=tokenizer)
    processor.save_pretrained(path)

    config = WhisperConfig(
        vocab_size=len(tokenizer) + WHISPER_TIMESTAMPS,
        num_mel_bins=mels,
        **(sizes or {"d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
                     "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64}),
        max_source_positions=1500,  # 30 s of 10 ms frames, halved by the conv stem: what long-form expects
        max_target_positions=max_target_positions,
        init_std=1.0 if sizes is None else 0.02,  # tests need random outputs apart, with the usual 0.02 all alike
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=[tokenizer.convert_tokens_to_ids(byte_chars[ord(" ")]), eot],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    fixed = {"max_new_tokens": new_tokens, "suppress_tokens": [eot]} if new_tokens else {"suppress_tokens": []}
    model.generation_config = GenerationConfig(
        **({} if new_tokens else {"max_length": config.max_target_positions}),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=config.decoder_start_token_id,
        begin_suppress_tokens=config.begin_suppress_tokens,
        **fixed,
        is_multilingual=True,
        lang_to_id={lang: ids[lang] for lang in languages},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        alignment_heads=[[1, 0], [1, 1]],
    )
    model.save_pretrained(path)
    return path


def build_tiny_nemo(folder: Path, texts: list[str], *, ctc_only: bool = False, tdt: bool = False,
                    dropout: float = 0.0, encoder: dict[str, Any] | None = None, features: int = 40) -> Path:
    """A hybrid RNNT/CTC FastConformer (2 layers, d_model 64, ~0.2M weights), or with `ctc_only` a CTC
    one (d_model 96), or with `tdt` a Token-and-Duration Transducer (Parakeet TDT's kind: the joint
    also predicts how many frames each token spans, durations 0-4), with a 160-piece SentencePiece
    BPE tokenizer trained on `texts`, saved as
    folder/tiny.nemo. NeMo's transducer losses run Python loops over the T x U lattice on CPUs: 8x
    subsampling and the large vocabulary keep lattices short, and its "pytorch" loss is the fastest
    one at this size. `dropout` applies to the encoder's layers; `encoder` overrides the encoder's
    sizes and `features` its mel bands (a real model's, for speed measurements)."""
    import sentencepiece as spm
    from nemo.collections.asr.models import EncDecCTCModelBPE, EncDecHybridRNNTCTCBPEModel, EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    tokenizer = folder / "tokenizer"
    tokenizer.mkdir(parents=True)
    (folder / "text.txt").write_text("\n".join(texts))
    spm.SentencePieceTrainer.train(input=str(folder / "text.txt"), model_prefix=str(tokenizer / "tokenizer"),
                                   vocab_size=160, model_type="bpe", character_coverage=1.0, minloglevel=2)
    pieces = spm.SentencePieceProcessor(model_file=str(tokenizer / "tokenizer.model"))
    (tokenizer / "vocab.txt").write_text("".join(pieces.id_to_piece(i) + "\n" for i in range(pieces.get_piece_size())))
    hidden = (encoder or {}).get("d_model", 96 if ctc_only else 64)
    cfg = OmegaConf.create({
        "sample_rate": 16000,
        "tokenizer": {"dir": str(tokenizer), "type": "bpe"},
        "model_defaults": {"enc_hidden": hidden, "pred_hidden": hidden, "joint_hidden": hidden},
        # as in NeMo's configs: transcribe() takes its dataloader settings from validation_ds
        "train_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 8, "shuffle": True},
        "validation_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 8, "shuffle": False},
        "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "sample_rate": 16000, "normalize": "per_feature", "window_size": 0.025, "window_stride": 0.01,
                         "window": "hann", "features": features, "n_fft": 512, "frame_splicing": 1, "dither": 0.0,
                         "pad_to": 0},
        "encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": features, "feat_out": -1,
                    "n_layers": 2, "d_model": hidden, "subsampling": "dw_striding", "subsampling_factor": 8,
                    "subsampling_conv_channels": 32, "ff_expansion_factor": 2, "self_attention_model": "rel_pos",
                    "n_heads": 2, "att_context_size": [-1, -1], "xscaling": True, "pos_emb_max_len": 5000,
                    "conv_kernel_size": 9, "conv_norm_type": "batch_norm", "dropout": dropout,
                    "dropout_pre_encoder": 0.0, "dropout_emb": 0.0, "dropout_att": 0.0, **(encoder or {})},
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True,
                    "prednet": {"pred_hidden": hidden, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.0}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None, "preserve_memory": False,
                  "fuse_loss_wer": True, "fused_batch_size": 4,
                  "jointnet": {"joint_hidden": hidden, "activation": "relu", "dropout": 0.0}},
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}},
        "aux_ctc": {"ctc_loss_weight": 0.3, "use_cer": False, "ctc_reduction": "mean_batch",
                    "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": None,
                                "num_classes": -1, "vocabulary": []},
                    "decoding": {"strategy": "greedy_batch"}},
        "loss": {"loss_name": "pytorch"},
        "optim": {"name": "adamw", "lr": 1e-3},
    })
    if ctc_only:
        for key in ("model_defaults", "joint", "aux_ctc", "loss"):
            del cfg[key]
        cfg.decoder = {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": hidden, "num_classes": -1,
                       "vocabulary": []}
    if tdt:  # as NeMo's parakeet-tdt configs: durations beside the tokens, decoded and trained as such
        durations = [0, 1, 2, 3, 4]
        del cfg["aux_ctc"]
        cfg.model_defaults.tdt_durations = durations
        cfg.joint.num_extra_outputs = len(durations)
        cfg.decoding.model_type = "tdt"
        cfg.decoding.durations = durations
        cfg.loss = {"loss_name": "tdt", "tdt_kwargs": {"durations": durations, "sigma": 0.02, "omega": 0.1}}
    model_class = EncDecCTCModelBPE if ctc_only else EncDecRNNTBPEModel if tdt else EncDecHybridRNNTCTCBPEModel
    model = model_class(cfg=cfg)
    model.save_to(str(folder / "tiny.nemo"))
    return folder / "tiny.nemo"


CANARY_LANGUAGES = ("en", "de", "es")
CANARY_FRAMES = 400  # timestamp tokens <|0|> ... <|399|>: encoder frames of 80 ms, as in Canary's tokenizers


def build_tiny_canary(folder: Path, rows: list[dict], *, steps: int = 0) -> Path:
    """A Canary-style multitask model, saved as folder/tiny.nemo: NeMo's EncDecMultiTaskModel with the
    canary2 prompt (decoder context, emotion, source and target language, punctuation, ITN,
    timestamps, diarization), a 2-layer FastConformer encoder (d_model 64, 8x subsampling) and a
    1-layer transformer decoder; its tokenizer NeMo's CanaryTokenizer: the prompt's special tokens
    beside a character-level SentencePiece per language (CANARY_LANGUAGES) trained on the rows' text.

    With `steps`, first trained that many steps of AdamW on `rows` (audio_filepath, text, lang):
    each row's text after a prompt in its own language, once without timestamps and once with word
    times (<|start|>word<|end|>, spread evenly over the utterance): enough for a tiny model to
    learn a few utterances, so that tests can read real transcripts."""
    import sentencepiece as spm
    from nemo.collections.asr.models import EncDecMultiTaskModel
    from nemo.collections.asr.parts.submodules.multitask_decoding import MultiTaskDecodingConfig
    from nemo.collections.common.tokenizers.canary_tokenizer import CanaryTokenizer
    from omegaconf import OmegaConf

    folder.mkdir(parents=True, exist_ok=True)
    special = [*(f"<|{code}|>" for code in CANARY_LANGUAGES), "<|transcribe|>", "<|translate|>", "<|startofcontext|>",
               "<|emo:undefined|>", "<|itn|>", "<|noitn|>", "<|timestamp|>", "<|notimestamp|>", "<|diarize|>",
               "<|nodiarize|>", *(f"<|{i}|>" for i in range(CANARY_FRAMES))]
    CanaryTokenizer.build_special_tokenizer(special, folder / "spl_tokens")
    langs = {"spl_tokens": {"dir": str(folder / "spl_tokens"), "type": "bpe"}}
    for code in CANARY_LANGUAGES:
        out = folder / code
        out.mkdir()
        text = [r["text"] for r in rows if r["lang"] == code] or ["a"]
        (out / "text.txt").write_text("\n".join(text))
        spm.SentencePieceTrainer.train(input=str(out / "text.txt"), model_prefix=str(out / "tokenizer"),
                                       vocab_size=64, model_type="char", character_coverage=1.0,
                                       hard_vocab_limit=False, minloglevel=2)
        pieces = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
        (out / "vocab.txt").write_text("".join(pieces.id_to_piece(i) + "\n" for i in range(pieces.get_piece_size())))
        langs[code] = {"dir": str(out), "type": "bpe"}
    decoding = OmegaConf.merge(OmegaConf.structured(MultiTaskDecodingConfig),
                               {"strategy": "greedy", "greedy": {"max_generation_delta": 80}})
    cfg = OmegaConf.create({
        "sample_rate": 16000,
        "prompt_format": "canary2",
        "restore_timestamps_model": False,  # Canary-1b-v2 aligns with a CTC model; this one times its own words
        "model_defaults": {"asr_enc_hidden": 64, "lm_enc_hidden": 64, "lm_dec_hidden": 64},
        "tokenizer": {"dir": None, "type": "agg", "langs": langs,
                      "custom_tokenizer": {"_target_": f"{CanaryTokenizer.__module__}.CanaryTokenizer"}},
        "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "sample_rate": 16000, "normalize": "per_feature", "window_size": 0.025, "window_stride": 0.01,
                         "window": "hann", "features": 40, "n_fft": 512, "frame_splicing": 1, "dither": 0.0,
                         "pad_to": 0},
        "encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": 40, "feat_out": -1,
                    "n_layers": 2, "d_model": 64, "subsampling": "dw_striding", "subsampling_factor": 8,
                    "subsampling_conv_channels": 32, "ff_expansion_factor": 2, "self_attention_model": "rel_pos",
                    "n_heads": 2, "att_context_size": [-1, -1], "xscaling": True, "pos_emb_max_len": 5000,
                    "conv_kernel_size": 9, "conv_norm_type": "batch_norm", "dropout": 0.0,
                    "dropout_pre_encoder": 0.0, "dropout_emb": 0.0, "dropout_att": 0.0},
        "transf_decoder": {"_target_": "nemo.collections.asr.modules.transformer.get_nemo_transformer",
                           "encoder": False, "pre_ln_final_layer_norm": True,
                           "config_dict": {"hidden_size": 64, "inner_size": 128, "num_layers": 1,
                                           "num_attention_heads": 2, "max_sequence_length": 512, "pre_ln": True,
                                           "num_token_types": 0, "vocab_size": None}},
        "head": {"_target_": "nemo.collections.asr.parts.submodules.token_classifier.TokenClassifier",
                 "hidden_size": 64, "num_classes": None, "num_layers": 1, "log_softmax": True},
        "loss": {"_target_": "nemo.collections.common.losses.smoothed_cross_entropy.SmoothedCrossEntropyLoss",
                 "label_smoothing": 0.0},
        "decoding": decoding,
    })
    model = EncDecMultiTaskModel(cfg=cfg)
    if steps:
        _train_prompted(model, rows, steps)
    model.save_to(str(folder / "tiny.nemo"))
    return folder / "tiny.nemo"


def _train_prompted(model: Any, rows: list[dict], steps: int) -> None:
    """Teacher-forced training of a canary2 model on `rows`, each with and without word times."""
    import soundfile as sf
    import torch

    frame = model.cfg.preprocessor.window_stride * model.encoder.subsampling_factor
    examples = []
    for row in rows:
        audio, _ = sf.read(row["audio_filepath"], dtype="float32")
        words = row["text"].split()
        span = len(audio) / 16000 / frame / len(words)  # frames per word, spread evenly
        timed = " ".join(f"<|{int(i * span)}|>{w}<|{int((i + 1) * span) - 1}|>" for i, w in enumerate(words))
        for stamps, text in (("no", row["text"]), ("yes", timed)):
            slots = {"decodercontext": "", "emotion": "<|emo:undefined|>", "source_lang": row["lang"],
                     "target_lang": row["lang"], "pnc": "yes", "itn": "no", "timestamp": stamps, "diarize": "no"}
            ids = model.prompt.encode_dialog([{"role": "user", "slots": slots},
                                              {"role": "assistant", "slots": {"text": text,
                                                                               "prompt_language": row["lang"]}}])
            examples.append((torch.from_numpy(audio), ids["input_ids"]))
    pad = model.tokenizer.pad_id
    signal = torch.nn.utils.rnn.pad_sequence([a for a, _ in examples], batch_first=True)
    lengths = torch.tensor([len(a) for a, _ in examples])
    tokens = torch.nn.utils.rnn.pad_sequence([t for _, t in examples], batch_first=True, padding_value=pad)
    token_lengths = torch.tensor([len(t) for _, t in examples])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        log_probs, *_ = model.forward(input_signal=signal, input_signal_length=lengths,
                                      transcript=tokens[:, :-1], transcript_length=token_lengths - 1)
        loss = model.loss(log_probs=log_probs, labels=tokens[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def build_learning_whisper(path: Path, *, window: int = 4) -> Path:
    """build_tiny_whisper's tokenizer and prompts, with a model that can learn: d_model 64, the usual
    init (the tiny one's init_std=1.0 keeps random outputs apart, and trains badly), `window`-second
    inputs (4 s is fast; faster-whisper's own transcribe() takes Whisper's 30 s only) and Whisper's 448
    target positions (CTranslate2 refuses to generate past a model's last one, faster-whisper asks for 448)."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    path = build_tiny_whisper(path, max_target_positions=448)
    tiny = WhisperForConditionalGeneration.from_pretrained(path)
    tiny.config.update({"d_model": 64, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "init_std": 0.02,
                        "max_source_positions": 50 * window})
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(tiny.config)
    model.generation_config = tiny.generation_config
    model.save_pretrained(path)
    processor = WhisperProcessor.from_pretrained(path)
    processor.feature_extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=window)
    processor.save_pretrained(path)
    return path
