// Translated code and the interpreter run with large frames of locals that
// every path writes before reading: zeroing them on entry is wasted work.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
