//! Hard bounds on what a file may declare. They keep shape arithmetic in range and make the
//! cost of validating a hostile file proportional to its size, not to what it claims.

/// Layers in one program.
pub const MAX_LAYERS: usize = 1 << 16;
/// Bytes in a layer or model name.
pub const MAX_NAME_LEN: usize = 256;
/// Inputs of one layer (Concat is the only wide one).
pub const MAX_INPUTS: usize = 1 << 10;
/// Channels of one activation, or features of a flattened one.
pub const MAX_CHANNELS: u32 = 1 << 26;
/// Height or width of one activation.
pub const MAX_SPATIAL: u32 = 1 << 14;
/// Elements of one activation tensor.
pub const MAX_ELEMENTS: u64 = 1 << 31;
/// Kernel, stride or dilation along one axis.
pub const MAX_WINDOW: u32 = 1 << 10;
/// Padding on one side.
pub const MAX_PADDING: u32 = 1 << 12;
/// Elements of one weight tensor.
pub const MAX_WEIGHT_ELEMENTS: u64 = 1 << 31;
/// Weight tensors in a weight file.
pub const MAX_WEIGHT_TENSORS: usize = 1 << 18;
/// Fractional bits of the fixed-point encoding.
pub const MAX_FRAC_BITS: u8 = 30;
/// Magnitude of an activation's raw constant (slope, α, β): its products with activations
/// stay far inside the ring.
pub const MAX_ACTIVATION_CONSTANT: u64 = 1 << 32;
