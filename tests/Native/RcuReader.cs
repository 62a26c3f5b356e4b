using System.Collections.Concurrent;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

/// <summary>
/// A dedicated thread registered with a QSBR domain that runs the steps a test
/// posts to it, in order, so a test can hold a reader at an exact point (online,
/// holding a pointer, no quiescent state) while it checks what an updater does.
/// </summary>
internal sealed class RcuReader : IDisposable
{
    private readonly BlockingCollection<(Action<QsbrThread> Step, TaskCompletionSource Done)> _steps = [];
    private readonly Thread _thread;
    private QsbrThread? _self;

    public RcuReader(Qsbr qsbr, string name = "reader")
    {
        var registered = new TaskCompletionSource();
        _thread = new Thread(() =>
        {
            _self = qsbr.Register(name);
            registered.SetResult();
            foreach (var (step, done) in _steps.GetConsumingEnumerable())
            {
                try { step(_self); done.SetResult(); }
                catch (Exception e) { done.SetException(e); }
            }
            _self.Dispose();
        }) { Name = name, IsBackground = true };
        _thread.Start();
        registered.Task.Wait();
    }

    public QsbrThread Self => _self!;

    public Task Run(Action<QsbrThread> step)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _steps.Add((step, done));
        return done.Task;
    }

    /// <summary>
    /// Waits until an updater's grace period is waiting on this reader, shown by
    /// the kick it sets after its spin phase, and checks that
    /// <paramref name="update"/> has not finished. Only then does a quiescent
    /// state from this reader mean anything to that grace period: one passed
    /// before the counter moved does not count (by design), and an idle reader
    /// stays online, so releasing too early would leave the updater waiting for ever.
    /// </summary>
    public void AssertUpdaterWaiting(Task? update = null)
    {
        Assert.True(SpinWait.SpinUntil(() => Self.KickRequested || update?.IsCompleted == true, TimeSpan.FromSeconds(30)),
            "no grace period started waiting on the reader");
        if (update != null) TaskAssert.StillBlocked(update, 20);
    }

    public void Dispose()
    {
        _steps.CompleteAdding();
        _thread.Join();
    }
}

internal static class TaskAssert
{
    /// <summary>
    /// Runs <paramref name="action"/> on a dedicated thread. Not the thread pool:
    /// with other tests blocking pool threads, a pooled operation might not even
    /// have started when a test checks that it is "still blocked".
    /// </summary>
    public static Task OnThread(Action action)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { action(); done.SetResult(); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true }.Start();
        return done.Task;
    }

    /// <summary>Asserts the task is still running after a pause long enough for it to have finished if it could.</summary>
    public static void StillBlocked(Task task, int ms = 100)
    {
        Thread.Sleep(ms);
        Assert.False(task.IsCompleted, "expected the operation to wait for the reader, but it completed");
    }

    public static void Completes(Task task, int seconds = 10) =>
        Assert.True(task.Wait(TimeSpan.FromSeconds(seconds)), "the operation did not complete");
}
