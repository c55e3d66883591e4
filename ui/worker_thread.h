// One long-lived thread for reads of /proc that would hold the GUI thread (the task manager's
// figures, its process tree). Fully started before the constructor returns, never a pool that
// creates threads on demand: a thread glibc is still starting when the broker clone3()s a
// renderer leaves the child's setresgid() waiting on it forever (see the ui report).
//
// The destructor waits for the work in progress, so a result posted back to the owner (a
// member of it, declared after whatever the result touches) never outlives the owner.
#pragma once

#include <QObject>
#include <QSemaphore>
#include <QString>
#include <QThread>
#include <utility>

namespace sbx::ui {

class WorkerThread {
 public:
  explicit WorkerThread(const QString& name) {
    thread_.setObjectName(name);
    worker_ = new QObject;
    worker_->moveToThread(&thread_);
    QObject::connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
    thread_.start();
    QSemaphore running;
    QMetaObject::invokeMethod(worker_, [&running] { running.release(); });
    running.acquire();
  }
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;
  ~WorkerThread() {
    thread_.quit();
    thread_.wait();
  }

  // Runs `work` on the thread, after whatever was posted before it.
  template <typename F>
  void Post(F&& work) {
    QMetaObject::invokeMethod(worker_, std::forward<F>(work));
  }

 private:
  QThread thread_;
  QObject* worker_ = nullptr;  // lives on thread_
};

}  // namespace sbx::ui
