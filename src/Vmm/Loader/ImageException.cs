namespace Sharpvisor.Vmm.Loader;

/// <summary>
/// An image that cannot be loaded, with the exit status it earns (65 for a
/// bad image, 66 for a missing or unreadable file) and a one-line reason.
/// Loading is not a hot path, so a typed exception is the plain way to leave
/// from deep inside the checks.
/// </summary>
public sealed class ImageException(ExitStatus status, string message) : Exception(message)
{
    public ExitStatus Status { get; } = status;
}
