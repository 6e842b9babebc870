//! Building a `tokenizers` tokenizer that splits text exactly as llama.cpp does for the same
//! GGUF vocabulary.

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::utils::Sequence as NormalizerSequence;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::tokenizer::TokenizerError;
use crate::tokenizer::vocab::{GgufVocab, TokenType, VocabKind};

/// SentencePiece's visible space.
pub(crate) const SPM_SPACE: &str = "\u{2581}";

// The regexes llama.cpp uses for each `tokenizer.ggml.pre`; several are applied one after the
// other, each splitting the pieces the previous one left.
const RE_GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const RE_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const RE_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const RE_SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer regexes for a `tokenizer.ggml.pre` value.
pub(crate) fn pre_tokenizer_regexes(pre: &str) -> Result<Vec<&'static str>, TokenizerError> {
    Ok(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" | "dbrx" | "smaug-bpe" => {
            vec![RE_LLAMA3]
        }
        "chatglm-bpe" | "glm4" => vec![RE_LLAMA3],
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "hunyuan" => vec![RE_QWEN2],
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" => {
            vec![r"\p{N}", RE_GPT2]
        }
        "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "jina-v1-en" | "jina-v2-es" | "jina-v2-de"
        | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "trillion" | "exaone4" => vec![RE_GPT2],
        "seed-coder" => vec![RE_SEED_CODER],
        "deepseek-coder" => vec![r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
        "default" => vec![r"[\p{P}\$\+<=>\^~\|]+", RE_GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
        other => return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string())),
    })
}

/// Builds the `tokenizers` pipeline for `vocab`: added tokens for everything llama.cpp splits out
/// before tokenizing, then the vocabulary's own model.
pub(crate) fn build(vocab: &GgufVocab) -> Result<tokenizers::Tokenizer, TokenizerError> {
    let mut tokenizer = match vocab.kind {
        VocabKind::ByteLevelBpe => byte_level_bpe(vocab)?,
        VocabKind::SentencePiece => sentencepiece(vocab)?,
    };
    let (special, user): (Vec<_>, Vec<_>) = vocab
        .tokens
        .iter()
        .zip(&vocab.types)
        .filter(|(_, ty)| ty.is_special())
        .partition(|(_, ty)| **ty != TokenType::UserDefined);
    // Matched on raw text, like llama.cpp's partition, so normalizers never see them.
    let added = |tokens: Vec<(&String, &TokenType)>, special: bool| -> Vec<AddedToken> {
        tokens.into_iter().map(|(text, _)| AddedToken::from(text.clone(), special).normalized(false)).collect()
    };
    tokenizer.add_special_tokens(&added(special, true));
    tokenizer.add_tokens(&added(user, false));
    Ok(tokenizer)
}

fn vocab_map(vocab: &GgufVocab) -> Vocab {
    let mut map = Vocab::with_capacity(vocab.tokens.len());
    // Later duplicates win, as in llama.cpp's text-to-id map.
    for (id, text) in vocab.tokens.iter().enumerate() {
        map.insert(text.clone(), id as u32);
    }
    map
}

fn byte_level_bpe(vocab: &GgufVocab) -> Result<tokenizers::Tokenizer, TokenizerError> {
    let map = vocab_map(vocab);
    let merges: Vec<(String, String)> =
        vocab.merges.iter().filter(|(a, b)| map.contains_key(a) && map.contains_key(b)).cloned().collect();
    let model = BPE::builder()
        .vocab_and_merges(map, merges)
        .ignore_merges(matches!(vocab.pre.as_str(), "llama3" | "llama-v3" | "llama-bpe"))
        .build()
        .map_err(|e| TokenizerError::Build(e.to_string()))?;
    let mut pre: Vec<PreTokenizerWrapper> = Vec::new();
    for re in pre_tokenizer_regexes(&vocab.pre)? {
        let split = Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| TokenizerError::Build(format!("pre-tokenizer regex {re:?}: {e}")))?;
        pre.push(split.into());
    }
    pre.push(ByteLevel::new(false, false, false).into());
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(pre)));
    tokenizer.with_decoder(Some(ByteLevel::new(false, false, false)));
    Ok(tokenizer)
}

/// SentencePiece BPE picks, at each step, the adjacent pair whose concatenation is the
/// highest-scoring token. Listing every split of every token as a merge, ordered by that
/// token's score, gives a BPE model that makes the same choices.
fn spm_merges(vocab: &GgufVocab, map: &Vocab) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, String, String)> = Vec::new();
    for (id, text) in vocab.tokens.iter().enumerate() {
        if vocab.types[id] == TokenType::Byte {
            continue;
        }
        for (pos, _) in text.char_indices().skip(1) {
            let (left, right) = text.split_at(pos);
            if map.contains_key(left) && map.contains_key(right) {
                ranked.push((vocab.scores[id], id as u32, left.to_string(), right.to_string()));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, l, r)| (l, r)).collect()
}

fn sentencepiece(vocab: &GgufVocab) -> Result<tokenizers::Tokenizer, TokenizerError> {
    let map = vocab_map(vocab);
    let merges = spm_merges(vocab, &map);
    let mut builder = BPE::builder().vocab_and_merges(map, merges).byte_fallback(true);
    if let Some(unk) = vocab.unk {
        builder = builder.unk_token(vocab.tokens[unk as usize].clone());
    }
    let model = builder.build().map_err(|e| TokenizerError::Build(e.to_string()))?;
    let space = Replace::new(" ", SPM_SPACE).map_err(|e| TokenizerError::Build(e.to_string()))?;
    let mut normalizers: Vec<NormalizerWrapper> = vec![space.into()];
    if vocab.add_space_prefix {
        normalizers.push(Prepend::new(SPM_SPACE.to_string()).into());
    }
    let unspace = Replace::new(SPM_SPACE, " ").map_err(|e| TokenizerError::Build(e.to_string()))?;
    let mut decoders: Vec<DecoderWrapper> = vec![unspace.into(), ByteFallback::new().into(), Fuse::new().into()];
    if vocab.add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_normalizer(Some(NormalizerSequence::new(normalizers)));
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tokenizer)
}
