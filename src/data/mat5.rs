//! A reader for MATLAB level-5 MAT-files (the format of `save -v6`/`-v7` and of
//! `scipy.io.savemat`): numeric and character arrays, compressed or not, either byte order.
//! Cells, structs, objects and sparse arrays are recognised and listed but their contents are
//! skipped, since no data set padsim reads stores its pixels that way.
//!
//! PAD equivalent: `scipy.io.loadmat`, as called by `torchvision.datasets.SVHN`.
//!
//! # Layout
//!
//! ```text
//! header, 128 bytes:
//!   0..116   descriptive text, "MATLAB 5.0 MAT-file, Platform: …"
//!   116..124 subsystem data offset (ignored)
//!   124..126 version, 0x0100 in the file's byte order
//!   126..128 endian indicator: the characters "MI" written as one 16-bit integer, so a
//!            little-endian file reads "IM" and a big-endian file "MI"
//! then data elements, one per variable, to the end of the file.
//!
//! data element = tag + data, padded to a multiple of 8 bytes:
//!   tag, 8 bytes:   u32 data type (mi…), u32 number of data bytes (padding not counted)
//!   small element:  if a tag's first u32 has non-zero upper 16 bits, the element packs into
//!                   8 bytes: u16 data type (low half), u16 byte count 1..=4 (high half),
//!                   then the data in the next 4 bytes.
//!
//! miCOMPRESSED (15): the data is a zlib stream that inflates to one complete data element
//!                    (in practice a miMATRIX). Not padded.
//! miMATRIX (14): the data is a sequence of sub-elements:
//!   array flags   miUINT32, 2 words: word 0 = class (low byte) | logical 0x200 | global 0x400
//!                 | complex 0x800; word 1 = nzmax (sparse only)
//!   dimensions    miINT32, one per dimension (at least 2)
//!   array name    miINT8 characters (often a small element)
//!   real part     numeric data, column-major (first index fastest). The storage type may be
//!                 narrower than the class: MATLAB stores a double array of small integers as
//!                 miUINT8, to be widened on reading.
//!   imaginary part (complex arrays only), same form
//! ```
//!
//! Reference: MathWorks, "MAT-File Format", version 7 (2019), chapter 1.

use super::{file_error, DataError};
use flate2::{Decompress, FlushDecompress, Status};
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Length of the file header.
pub const HEADER_LEN: usize = 128;

/// Data-element types (the `mi…` constants of the specification).
pub mod data_type {
    pub const INT8: u32 = 1;
    pub const UINT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const UINT16: u32 = 4;
    pub const INT32: u32 = 5;
    pub const UINT32: u32 = 6;
    pub const SINGLE: u32 = 7;
    pub const DOUBLE: u32 = 9;
    pub const INT64: u32 = 12;
    pub const UINT64: u32 = 13;
    pub const MATRIX: u32 = 14;
    pub const COMPRESSED: u32 = 15;
    pub const UTF8: u32 = 16;
    pub const UTF16: u32 = 17;
    pub const UTF32: u32 = 18;

    /// The specification's name of a data type, for error messages.
    pub fn name(code: u32) -> String {
        match code {
            INT8 => "miINT8".into(),
            UINT8 => "miUINT8".into(),
            INT16 => "miINT16".into(),
            UINT16 => "miUINT16".into(),
            INT32 => "miINT32".into(),
            UINT32 => "miUINT32".into(),
            SINGLE => "miSINGLE".into(),
            DOUBLE => "miDOUBLE".into(),
            INT64 => "miINT64".into(),
            UINT64 => "miUINT64".into(),
            MATRIX => "miMATRIX".into(),
            COMPRESSED => "miCOMPRESSED".into(),
            UTF8 => "miUTF8".into(),
            UTF16 => "miUTF16".into(),
            UTF32 => "miUTF32".into(),
            other => format!("unknown data type {other}"),
        }
    }

    /// Bytes per value of a numeric data type, `None` for the others.
    pub fn numeric_width(code: u32) -> Option<usize> {
        match code {
            INT8 | UINT8 => Some(1),
            INT16 | UINT16 => Some(2),
            INT32 | UINT32 | SINGLE => Some(4),
            DOUBLE | INT64 | UINT64 => Some(8),
            _ => None,
        }
    }
}

/// Byte order of a MAT-file, from its endian indicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Self::Little => u16::from_le_bytes(b),
            Self::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Self::Little => u32::from_le_bytes(b),
            Self::Big => u32::from_be_bytes(b),
        }
    }

    fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Self::Little => u64::from_le_bytes(b),
            Self::Big => u64::from_be_bytes(b),
        }
    }
}

/// The class of a MATLAB array (`mx…CLASS`), from the array flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatClass {
    Cell,
    Struct,
    Object,
    Char,
    Sparse,
    Double,
    Single,
    Int8,
    Uint8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    /// Function handles, opaque objects and codes this reader does not know.
    Other(u8),
}

impl MatClass {
    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Cell,
            2 => Self::Struct,
            3 => Self::Object,
            4 => Self::Char,
            5 => Self::Sparse,
            6 => Self::Double,
            7 => Self::Single,
            8 => Self::Int8,
            9 => Self::Uint8,
            10 => Self::Int16,
            11 => Self::Uint16,
            12 => Self::Int32,
            13 => Self::Uint32,
            14 => Self::Int64,
            15 => Self::Uint64,
            other => Self::Other(other),
        }
    }

    /// Whether arrays of this class are plain numbers (the only ones whose values this
    /// reader keeps, besides `Char`).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Double
                | Self::Single
                | Self::Int8
                | Self::Uint8
                | Self::Int16
                | Self::Uint16
                | Self::Int32
                | Self::Uint32
                | Self::Int64
                | Self::Uint64
        )
    }
}

impl fmt::Display for MatClass {
    /// MATLAB's own spelling (`class(x)`): `double`, `uint8`, `cell`, …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Cell => "cell",
            Self::Struct => "struct",
            Self::Object => "object",
            Self::Char => "char",
            Self::Sparse => "sparse",
            Self::Double => "double",
            Self::Single => "single",
            Self::Int8 => "int8",
            Self::Uint8 => "uint8",
            Self::Int16 => "int16",
            Self::Uint16 => "uint16",
            Self::Int32 => "int32",
            Self::Uint32 => "uint32",
            Self::Int64 => "int64",
            Self::Uint64 => "uint64",
            Self::Other(code) => return write!(f, "class code {code}"),
        };
        f.write_str(name)
    }
}

/// The stored values of an array's real part, still in the file's storage type and byte order.
#[derive(Clone, PartialEq, Eq)]
struct StoredValues {
    data_type: u32,
    endian: Endian,
    bytes: Vec<u8>,
}

/// One variable of a MAT-file.
#[derive(Clone, PartialEq, Eq)]
pub struct MatVariable {
    /// The variable's name.
    pub name: String,
    /// Its MATLAB class.
    pub class: MatClass,
    /// Its dimensions, at least two (MATLAB has no 1-D arrays).
    pub dims: Vec<usize>,
    /// Whether it has an imaginary part (which this reader skips).
    pub complex: bool,
    /// Whether it is a logical array (class `uint8` with values 0 and 1).
    pub logical: bool,
    real: Option<StoredValues>,
}

impl fmt::Debug for MatVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatVariable")
            .field("name", &self.name)
            .field("class", &self.class)
            .field("dims", &self.dims)
            .field("complex", &self.complex)
            .field(
                "storage",
                &self.real.as_ref().map(|r| data_type::name(r.data_type)),
            )
            .finish()
    }
}

impl MatVariable {
    /// Number of elements: the product of the dimensions.
    pub fn element_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// The dimensions as MATLAB prints them: `32x32x3x5`.
    pub fn dims_text(&self) -> String {
        let parts: Vec<String> = self.dims.iter().map(usize::to_string).collect();
        parts.join("x")
    }

    /// The storage type of the real part (`miUINT8`, `miDOUBLE`, …), if values were kept.
    pub fn storage_type(&self) -> Option<u32> {
        self.real.as_ref().map(|r| r.data_type)
    }

    /// The real part as bytes, in column-major order: borrowed when it is stored as
    /// `miUINT8`, converted when every stored value is an integer in 0..=255, `None` otherwise
    /// (and for arrays without numeric values).
    pub fn real_u8(&self) -> Option<Cow<'_, [u8]>> {
        let real = self.real.as_ref()?;
        if real.data_type == data_type::UINT8 {
            return Some(Cow::Borrowed(&real.bytes));
        }
        let values = self.real_f64()?;
        values
            .iter()
            .map(|&v| (v.fract() == 0.0 && (0.0..=255.0).contains(&v)).then_some(v as u8))
            .collect::<Option<Vec<u8>>>()
            .map(Cow::Owned)
    }

    /// The real part widened to `f64`, in column-major order; `None` for arrays without
    /// numeric values. 64-bit integers beyond 2^53 lose precision, as in MATLAB's `double()`.
    pub fn real_f64(&self) -> Option<Vec<f64>> {
        let real = self.real.as_ref()?;
        let width = data_type::numeric_width(real.data_type)?;
        let e = real.endian;
        let values = real
            .bytes
            .chunks_exact(width)
            .map(|b| match real.data_type {
                data_type::INT8 => f64::from(b[0] as i8),
                data_type::UINT8 => f64::from(b[0]),
                data_type::INT16 => f64::from(e.u16([b[0], b[1]]) as i16),
                data_type::UINT16 => f64::from(e.u16([b[0], b[1]])),
                data_type::INT32 => f64::from(e.u32(word(b)) as i32),
                data_type::UINT32 => f64::from(e.u32(word(b))),
                data_type::SINGLE => f64::from(f32::from_bits(e.u32(word(b)))),
                data_type::DOUBLE => f64::from_bits(e.u64(dword(b))),
                data_type::INT64 => e.u64(dword(b)) as i64 as f64,
                _ => e.u64(dword(b)) as f64, // UINT64, the only width-8 type left
            });
        Some(values.collect())
    }
}

fn word(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn dword(b: &[u8]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The variables of a MAT-file, in file order.
#[derive(Clone, Debug)]
pub struct MatFile {
    /// The file they were read from (quoted in errors).
    pub path: PathBuf,
    /// The file's byte order.
    pub endian: Endian,
    /// The variables.
    pub variables: Vec<MatVariable>,
}

impl MatFile {
    /// The variable called `name`, or an error listing the variables the file does have.
    pub fn variable(&self, name: &str) -> Result<&MatVariable, DataError> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                let found: Vec<&str> = self.variables.iter().map(|v| v.name.as_str()).collect();
                DataError::format(
                    &self.path,
                    format!(
                        "missing variable '{name}'; the file holds [{}]",
                        found.join(", ")
                    ),
                )
            })
    }
}

/// Reads the MAT-file at `path`.
pub fn read(path: &Path) -> Result<MatFile, DataError> {
    let file = std::fs::File::open(path)
        .map_err(|source| file_error(path, "a MATLAB v5/v7 MAT-file", source))?;
    read_from(io::BufReader::new(file), path)
}

/// Reads a MAT-file from `reader`; `path` names it in errors. Each top-level element is read
/// into memory on its own, so a file is never held whole next to its inflated variables.
pub fn read_from(mut reader: impl Read, path: &Path) -> Result<MatFile, DataError> {
    let io_error = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut header = [0u8; HEADER_LEN];
    let got = read_up_to(&mut reader, &mut header).map_err(io_error)?;
    let endian = parse_header(&header[..got], path)?;

    let mut variables = Vec::new();
    let mut offset = HEADER_LEN as u64;
    loop {
        let mut tag = [0u8; 8];
        let got = read_up_to(&mut reader, &mut tag).map_err(io_error)?;
        if got == 0 {
            break;
        }
        if got < tag.len() {
            return Err(DataError::format(
                path,
                format!("truncated: {got} bytes of an 8-byte element tag at offset {offset}"),
            ));
        }
        let kind = endian.u32(word(&tag[..4]));
        let len = endian.u32(word(&tag[4..])) as usize;
        if kind >> 16 != 0 {
            return Err(DataError::format(
                path,
                format!(
                    "element at offset {offset} has a small-element tag; a variable needs a full tag"
                ),
            ));
        }
        let mut body = Vec::new();
        (&mut reader)
            .take(len as u64)
            .read_to_end(&mut body)
            .map_err(io_error)?;
        if body.len() < len {
            return Err(DataError::format(
                path,
                format!(
                    "truncated: {} element at offset {offset} declares {len} bytes but only {} remain",
                    data_type::name(kind),
                    body.len()
                ),
            ));
        }
        offset += 8 + len as u64;
        let variable = match kind {
            data_type::COMPRESSED => {
                let inflated = inflate_zlib(&body, endian, path)?;
                drop(body);
                variable_from_inflated(inflated, endian, path)?
            }
            data_type::MATRIX => variable_from_matrix_body(body, 0..len, endian, path)?,
            // Other top-level elements carry no variable (none are defined); skip them.
            _ => None,
        };
        variables.extend(variable);
        if kind != data_type::COMPRESSED {
            // Uncompressed elements are padded to 8 bytes (miMATRIX bodies already are).
            let padding = (8 - len % 8) % 8;
            let mut skipped = Vec::new();
            (&mut reader)
                .take(padding as u64)
                .read_to_end(&mut skipped)
                .map_err(io_error)?;
            offset += skipped.len() as u64;
        }
    }
    Ok(MatFile {
        path: path.to_path_buf(),
        endian,
        variables,
    })
}

/// Fills as much of `buf` as the reader can, stopping early only at end of input.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks the 128-byte header and returns the file's byte order.
fn parse_header(header: &[u8], path: &Path) -> Result<Endian, DataError> {
    let bad =
        |detail: String| DataError::format(path, format!("not a MATLAB v5 MAT-file: {detail}"));
    if header.len() < HEADER_LEN {
        return Err(bad(format!(
            "{} bytes; expected at least the {HEADER_LEN}-byte header",
            header.len()
        )));
    }
    if header.starts_with(b"MATLAB 7.3") {
        return Err(DataError::format(
            path,
            "MATLAB v7.3 MAT-file (HDF5), which this reader does not handle; re-save it with \
             `save(..., '-v7')` or scipy.io.savemat",
        ));
    }
    let endian = match &header[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            // Level-4 files start with a numeric header whose first bytes include zeros.
            let hint = if header[..4].contains(&0) {
                " (a level-4 MAT-file or not a MAT-file)"
            } else {
                ""
            };
            return Err(bad(format!(
                "endian indicator {:?} at byte 126; expected \"IM\" or \"MI\"{hint}",
                String::from_utf8_lossy(other)
            )));
        }
    };
    let version = endian.u16([header[124], header[125]]);
    if version != 0x0100 {
        return Err(bad(format!("version 0x{version:04x}; expected 0x0100")));
    }
    Ok(endian)
}

/// Inflates a miCOMPRESSED element's zlib stream, insisting on its end marker so that a
/// truncated file is reported as such rather than as a short variable.
///
/// The stream holds one data element whose tag states its length, so once the first 8 bytes
/// are out the output buffer is sized exactly: no doubling, no slack next to a 200 MB variable.
fn inflate_zlib(compressed: &[u8], endian: Endian, path: &Path) -> Result<Vec<u8>, DataError> {
    // Deflate cannot expand more than about 1032:1; a tag claiming more is corrupt and must not
    // make us reserve that much.
    const MAX_DEFLATE_RATIO: usize = 1032;
    let fail = |source: io::Error| DataError::Decompress {
        path: path.to_path_buf(),
        format: "zlib",
        source,
    };
    let mut inflater = Decompress::new(true);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut sized = false;
    loop {
        if !sized && out.len() >= 8 {
            sized = true;
            let first = endian.u32(word(&out[..4]));
            if first >> 16 == 0 {
                let declared = 8 + endian.u32(word(&out[4..8])) as usize;
                let plausible = declared.min(
                    compressed
                        .len()
                        .saturating_mul(MAX_DEFLATE_RATIO)
                        .saturating_add(64),
                );
                out.reserve_exact(plausible.saturating_sub(out.len()));
            }
        }
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        let consumed = inflater.total_in() as usize;
        let produced = out.len();
        let status = inflater
            .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::None)
            .map_err(|e| fail(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        let progressed = inflater.total_in() as usize != consumed || out.len() != produced;
        if !progressed && out.len() < out.capacity() {
            return Err(fail(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "stream of {} bytes ends before its end marker, after inflating {} bytes",
                    compressed.len(),
                    out.len()
                ),
            )));
        }
    }
}

/// Parses the element a miCOMPRESSED stream inflated to.
fn variable_from_inflated(
    inflated: Vec<u8>,
    endian: Endian,
    path: &Path,
) -> Result<Option<MatVariable>, DataError> {
    let mut elements = Elements::new(&inflated, endian, path, "compressed element");
    let Some(inner) = elements.next("variable")? else {
        return Err(DataError::format(
            path,
            "compressed element inflates to nothing",
        ));
    };
    if inner.data_type != data_type::MATRIX {
        return Ok(None);
    }
    variable_from_matrix_body(inflated, inner.range, endian, path)
}

/// Parses a miMATRIX whose data is `buffer[body]`, moving the real part out of `buffer`
/// instead of copying it (the pixels of a data set are most of the file).
fn variable_from_matrix_body(
    mut buffer: Vec<u8>,
    body: Range<usize>,
    endian: Endian,
    path: &Path,
) -> Result<Option<MatVariable>, DataError> {
    let Some(parsed) = parse_matrix(&buffer[body.clone()], endian, path)? else {
        return Ok(None);
    };
    let real = parsed.real.map(|(data_type, range)| {
        let start = body.start + range.start;
        buffer.truncate(body.start + range.end);
        buffer.drain(..start);
        StoredValues {
            data_type,
            endian,
            bytes: buffer,
        }
    });
    Ok(Some(MatVariable {
        name: parsed.name,
        class: parsed.class,
        dims: parsed.dims,
        complex: parsed.complex,
        logical: parsed.logical,
        real,
    }))
}

/// A miMATRIX's header fields, and where its real part is.
struct ParsedMatrix {
    name: String,
    class: MatClass,
    dims: Vec<usize>,
    complex: bool,
    logical: bool,
    /// Storage type and byte range (within the miMATRIX body) of the real part.
    real: Option<(u32, Range<usize>)>,
}

const FLAG_COMPLEX: u32 = 0x0800;
const FLAG_LOGICAL: u32 = 0x0200;

/// Parses a miMATRIX body. `None` for an empty body (MATLAB's placeholder for an empty array).
fn parse_matrix(
    body: &[u8],
    endian: Endian,
    path: &Path,
) -> Result<Option<ParsedMatrix>, DataError> {
    if body.is_empty() {
        return Ok(None);
    }
    let mut elements = Elements::new(body, endian, path, "miMATRIX");
    let flags = elements.expect("array flags", &[data_type::UINT32])?;
    if flags.range.len() < 8 {
        return Err(DataError::format(
            path,
            format!(
                "miMATRIX array flags hold {} bytes; expected 8",
                flags.range.len()
            ),
        ));
    }
    let flag_word = endian.u32(word(&body[flags.range.clone()]));
    let class = MatClass::from_code((flag_word & 0xff) as u8);
    let complex = flag_word & FLAG_COMPLEX != 0;
    let logical = flag_word & FLAG_LOGICAL != 0;

    let dims_element = elements.expect("dimensions", &[data_type::INT32])?;
    let dims_bytes = &body[dims_element.range.clone()];
    if !dims_bytes.len().is_multiple_of(4) || dims_bytes.len() < 8 {
        return Err(DataError::format(
            path,
            format!(
                "miMATRIX dimensions hold {} bytes; expected at least two 4-byte integers",
                dims_bytes.len()
            ),
        ));
    }
    let dims = dims_bytes
        .chunks_exact(4)
        .map(|b| {
            let d = endian.u32(word(b)) as i32;
            usize::try_from(d).map_err(|_| {
                DataError::format(path, format!("miMATRIX has negative dimension {d}"))
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::format(path, "miMATRIX dimensions overflow the address space"))?;

    let name_element = elements.expect(
        "array name",
        &[data_type::INT8, data_type::UINT8, data_type::UTF8],
    )?;
    let name = String::from_utf8_lossy(&body[name_element.range]).into_owned();

    let keeps_values = class.is_numeric() || class == MatClass::Char;
    if !keeps_values {
        return Ok(Some(ParsedMatrix {
            name,
            class,
            dims,
            complex,
            logical,
            real: None,
        }));
    }
    let real = elements.next("real part")?.ok_or_else(|| {
        DataError::format(
            path,
            format!("variable '{name}' ({class}) has no real part"),
        )
    })?;
    let real = match data_type::numeric_width(real.data_type) {
        Some(width) => {
            let expected = count.saturating_mul(width);
            if real.range.len() != expected {
                return Err(DataError::format(
                    path,
                    format!(
                        "variable '{name}' has {} bytes of {} data; its dimensions {} need {expected}",
                        real.range.len(),
                        data_type::name(real.data_type),
                        dims.iter().map(usize::to_string).collect::<Vec<_>>().join("x"),
                    ),
                ));
            }
            Some((real.data_type, real.range))
        }
        // Character data stored as UTF-8/16/32 is not numeric; keep the header only.
        None if class == MatClass::Char => None,
        None => {
            return Err(DataError::format(
                path,
                format!(
                    "variable '{name}' ({class}) stores its values as {}; expected a numeric type",
                    data_type::name(real.data_type)
                ),
            ))
        }
    };
    Ok(Some(ParsedMatrix {
        name,
        class,
        dims,
        complex,
        logical,
        real,
    }))
}

/// One data element inside a buffer.
struct Element {
    data_type: u32,
    /// Where its data lies in the buffer (tag and padding excluded).
    range: Range<usize>,
}

/// Walks the data elements packed in a buffer.
struct Elements<'a> {
    buf: &'a [u8],
    pos: usize,
    endian: Endian,
    path: &'a Path,
    /// What holds these elements, for error messages.
    container: &'static str,
}

impl<'a> Elements<'a> {
    fn new(buf: &'a [u8], endian: Endian, path: &'a Path, container: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            endian,
            path,
            container,
        }
    }

    fn truncated(&self, what: &str, detail: String) -> DataError {
        DataError::format(
            self.path,
            format!("truncated {} ({what}): {detail}", self.container),
        )
    }

    /// The next element, or `None` at the end of the buffer.
    fn next(&mut self, what: &str) -> Result<Option<Element>, DataError> {
        let remaining = self.buf.len() - self.pos;
        if remaining == 0 {
            return Ok(None);
        }
        if remaining < 8 {
            return Err(self.truncated(
                what,
                format!("{remaining} bytes left at byte {}; a tag needs 8", self.pos),
            ));
        }
        let first = self.endian.u32(word(&self.buf[self.pos..]));
        let element = if first >> 16 != 0 {
            // Small data element: type and length share the first word, data the second.
            let len = (first >> 16) as usize;
            if len > 4 {
                return Err(DataError::format(
                    self.path,
                    format!(
                        "{} ({what}): small element at byte {} claims {len} bytes; at most 4 fit",
                        self.container, self.pos
                    ),
                ));
            }
            let start = self.pos + 4;
            self.pos += 8;
            Element {
                data_type: first & 0xffff,
                range: start..start + len,
            }
        } else {
            let len = self.endian.u32(word(&self.buf[self.pos + 4..])) as usize;
            let start = self.pos + 8;
            if len > self.buf.len() - start {
                return Err(self.truncated(
                    what,
                    format!(
                        "{} element at byte {} declares {len} bytes but only {} remain",
                        data_type::name(first),
                        self.pos,
                        self.buf.len() - start
                    ),
                ));
            }
            // Padding to the next multiple of 8; the last element may omit it.
            self.pos = (start + len.div_ceil(8) * 8).min(self.buf.len());
            Element {
                data_type: first,
                range: start..start + len,
            }
        };
        Ok(Some(element))
    }

    /// The next element, which must exist and have one of the `allowed` types.
    fn expect(&mut self, what: &str, allowed: &[u32]) -> Result<Element, DataError> {
        let element = self
            .next(what)?
            .ok_or_else(|| self.truncated(what, "the element is missing".into()))?;
        if !allowed.contains(&element.data_type) {
            let allowed: Vec<String> = allowed.iter().map(|&t| data_type::name(t)).collect();
            return Err(DataError::format(
                self.path,
                format!(
                    "{} {what} stored as {}; expected {}",
                    self.container,
                    data_type::name(element.data_type),
                    allowed.join(" or ")
                ),
            ));
        }
        Ok(element)
    }
}

/// Builds level-5 MAT-files in memory, for tests: uncompressed numeric variables in either
/// byte order, optionally compressed.
#[cfg(test)]
pub(crate) mod writer {
    use super::{data_type, Endian};

    pub fn header(endian: Endian) -> Vec<u8> {
        let mut h = b"MATLAB 5.0 MAT-file, written by padsim tests".to_vec();
        h.resize(116, b' ');
        h.extend([0u8; 8]);
        match endian {
            Endian::Little => {
                h.extend(0x0100u16.to_le_bytes());
                h.extend(b"IM");
            }
            Endian::Big => {
                h.extend(0x0100u16.to_be_bytes());
                h.extend(b"MI");
            }
        }
        h
    }

    fn u32_bytes(endian: Endian, v: u32) -> [u8; 4] {
        match endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    fn element(endian: Endian, kind: u32, data: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        if data.len() <= 4 && kind != data_type::MATRIX {
            e.extend(u32_bytes(endian, ((data.len() as u32) << 16) | kind));
            e.extend(data);
            e.resize(8, 0);
        } else {
            e.extend(u32_bytes(endian, kind));
            e.extend(u32_bytes(endian, data.len() as u32));
            e.extend(data);
            e.resize(e.len().div_ceil(8) * 8, 0);
        }
        e
    }

    /// A miMATRIX element. `class` is the mx class code; `values` are already in `storage`
    /// type and the file's byte order.
    pub fn matrix(
        endian: Endian,
        name: &str,
        class: u8,
        dims: &[i32],
        storage: u32,
        values: &[u8],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        let mut flags = Vec::new();
        flags.extend(u32_bytes(endian, u32::from(class)));
        flags.extend(u32_bytes(endian, 0));
        body.extend(element(endian, data_type::UINT32, &flags));
        let dims: Vec<u8> = dims
            .iter()
            .flat_map(|&d| u32_bytes(endian, d as u32))
            .collect();
        body.extend(element(endian, data_type::INT32, &dims));
        body.extend(element(endian, data_type::INT8, name.as_bytes()));
        body.extend(element(endian, storage, values));
        element(endian, data_type::MATRIX, &body)
    }

    pub fn compressed(endian: Endian, element: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(element).unwrap();
        let data = z.finish().unwrap();
        let mut e = Vec::new();
        e.extend(u32_bytes(endian, data_type::COMPRESSED));
        e.extend(u32_bytes(endian, data.len() as u32));
        e.extend(data);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::writer::*;
    use super::*;

    fn parse(bytes: &[u8]) -> Result<MatFile, DataError> {
        read_from(bytes, Path::new("t.mat"))
    }

    #[test]
    fn reads_uncompressed_and_compressed_variables_in_both_byte_orders() {
        for endian in [Endian::Little, Endian::Big] {
            let doubles: Vec<u8> = [1.5f64, -2.0, 10.0]
                .iter()
                .flat_map(|v| match endian {
                    Endian::Little => v.to_le_bytes(),
                    Endian::Big => v.to_be_bytes(),
                })
                .collect();
            let y = matrix(endian, "y", 6, &[3, 1], data_type::DOUBLE, &doubles);
            let x = matrix(
                endian,
                "X",
                9,
                &[2, 3],
                data_type::UINT8,
                &[1, 2, 3, 4, 5, 6],
            );
            let mut file = header(endian);
            file.extend(&y);
            file.extend(compressed(endian, &x));
            let mat = parse(&file).unwrap();
            assert_eq!(mat.endian, endian);
            let y = mat.variable("y").unwrap();
            assert_eq!((y.class, y.dims.clone()), (MatClass::Double, vec![3, 1]));
            assert_eq!(y.real_f64().unwrap(), vec![1.5, -2.0, 10.0]);
            assert!(y.real_u8().is_none(), "1.5 and -2 are not bytes");
            let x = mat.variable("X").unwrap();
            assert_eq!(x.dims_text(), "2x3");
            assert_eq!(&*x.real_u8().unwrap(), &[1, 2, 3, 4, 5, 6]);
        }
    }

    #[test]
    fn widens_narrow_storage_to_the_class() {
        // MATLAB saves a double array of small integers as miUINT8 / miINT16.
        let le = Endian::Little;
        let y8 = matrix(le, "a", 6, &[1, 2], data_type::UINT8, &[10, 3]);
        let y16 = matrix(
            le,
            "b",
            6,
            &[1, 1],
            data_type::INT16,
            &(-7i16).to_le_bytes(),
        );
        let mut file = header(le);
        file.extend(y8);
        file.extend(y16);
        let mat = parse(&file).unwrap();
        assert_eq!(
            mat.variable("a").unwrap().real_f64().unwrap(),
            vec![10.0, 3.0]
        );
        assert_eq!(mat.variable("b").unwrap().real_f64().unwrap(), vec![-7.0]);
    }

    #[test]
    fn header_errors_say_what_is_wrong() {
        let err = parse(b"MATLAB 5.0").unwrap_err().to_string();
        assert!(
            err.starts_with("t.mat: not a MATLAB v5 MAT-file: 10 bytes"),
            "{err}"
        );

        let mut h = header(Endian::Little);
        h[126..128].copy_from_slice(b"XX");
        let err = parse(&h).unwrap_err().to_string();
        assert!(err.contains("endian indicator \"XX\""), "{err}");

        let mut h = header(Endian::Little);
        h[124] = 2;
        let err = parse(&h).unwrap_err().to_string();
        assert!(err.contains("version 0x0102"), "{err}");

        let mut h = b"MATLAB 7.3 MAT-file".to_vec();
        h.resize(512, 0);
        let err = parse(&h).unwrap_err().to_string();
        assert!(err.contains("HDF5"), "{err}");
    }

    #[test]
    fn truncation_is_reported_not_panicked() {
        let le = Endian::Little;
        let x = matrix(le, "X", 9, &[4, 4], data_type::UINT8, &[7; 16]);
        let mut plain = header(le);
        plain.extend(&x);
        let mut packed = header(le);
        packed.extend(compressed(le, &x));
        for file in [plain, packed] {
            assert!(parse(&file).is_ok());
            for cut in (HEADER_LEN + 1)..file.len() {
                let err = parse(&file[..cut]).unwrap_err().to_string();
                assert!(err.starts_with("t.mat: "), "{err}");
                assert!(err.contains("truncated") || err.contains("zlib"), "{err}");
            }
        }
    }

    #[test]
    fn a_zlib_stream_cut_short_is_reported_as_such() {
        let le = Endian::Little;
        let x = matrix(le, "X", 9, &[4, 4], data_type::UINT8, &[7; 16]);
        let packed = compressed(le, &x);
        // A consistent tag around half a stream: only the inflater can tell it is short.
        let stream = &packed[8..];
        let cut = &stream[..stream.len() / 2];
        let mut file = header(le);
        file.extend(data_type::COMPRESSED.to_le_bytes());
        file.extend((cut.len() as u32).to_le_bytes());
        file.extend(cut);
        let err = parse(&file).unwrap_err().to_string();
        assert!(err.contains("zlib decompression failed"), "{err}");
        assert!(err.contains("ends before its end marker"), "{err}");
    }

    #[test]
    fn corrupt_inner_elements_are_errors() {
        let le = Endian::Little;
        // Dimensions say 4x4 but only 15 values are stored.
        let x = matrix(le, "X", 9, &[4, 4], data_type::UINT8, &[7; 15]);
        let mut file = header(le);
        file.extend(&x);
        let err = parse(&file).unwrap_err().to_string();
        assert!(
            err.contains("15 bytes of miUINT8 data") && err.contains("4x4"),
            "{err}"
        );

        // Garbage where the zlib stream should be.
        let mut file = header(le);
        file.extend(data_type::COMPRESSED.to_le_bytes());
        file.extend(8u32.to_le_bytes());
        file.extend([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
        let err = parse(&file).unwrap_err().to_string();
        assert!(err.contains("zlib decompression failed"), "{err}");

        let mut file = header(le);
        file.extend(matrix(le, "v", 6, &[1, -1], data_type::DOUBLE, &[]));
        let err = parse(&file).unwrap_err().to_string();
        assert!(err.contains("negative dimension -1"), "{err}");
    }

    #[test]
    fn cells_and_structs_are_listed_without_values() {
        let le = Endian::Little;
        // A 0x0 cell: flags, dims, name and no further sub-elements.
        let cell = matrix(le, "c", 1, &[0, 0], data_type::UINT8, &[]);
        let mut file = header(le);
        file.extend(cell);
        let mat = parse(&file).unwrap();
        let c = mat.variable("c").unwrap();
        assert_eq!(c.class, MatClass::Cell);
        assert!(c.real_f64().is_none());
        let err = mat.variable("X").unwrap_err().to_string();
        assert_eq!(err, "t.mat: missing variable 'X'; the file holds [c]");
    }
}
