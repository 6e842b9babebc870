//! The constants of Cephes' `expf`, shared by every vectorized `e^x` in hearth (the SiLU gate
//! here, the attention softmax in the engine): `e^x = 2^n * e^r` with `n = round(x / ln 2)` and
//! `e^r = 1 + r + r^2 * p(r)` on `|r| <= ln 2 / 2`.

/// ln 2 split in two (Cody and Waite): the high part has few enough bits that `n * LN2_HI` is
/// exact for every `n` the reduction produces, so the reduced argument loses no precision.
pub const LN2_HI: f32 = 0.693_359_4;
/// The rest of ln 2.
pub const LN2_LO: f32 = -2.121_944_4e-4;
/// Coefficients of the polynomial for `(e^r - 1 - r) / r^2` on `|r| <= ln 2 / 2`, highest degree
/// first.
pub const EXP_POLY: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];
