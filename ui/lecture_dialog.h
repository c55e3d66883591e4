// Help > The lecture's table: `sbx-bench --lecture` run from the window, its rows shown as they
// are measured. The measurements fork, exec and pin CPUs, which the window must never do
// itself (it only observes), so they run in sbx-bench, a separate program next to `sbx`; the
// dialog reads its --json lines. Closing the dialog ends a run that is still going.
#pragma once

#include <QByteArray>
#include <QDialog>
#include <QProcess>
#include <QString>

class QCheckBox;
class QLabel;
class QMainWindow;
class QPushButton;
class QTableWidget;

namespace sbx::ui {

class LectureDialog : public QDialog {
  Q_OBJECT

 public:
  // `bench` is the sbx-bench to run.
  explicit LectureDialog(QString bench, QWidget* parent = nullptr);
  ~LectureDialog() override;

  // Starts a run (a quick one: fewer samples); a run already going is left alone.
  void Measure(bool quick);
  bool running() const { return process_.state() != QProcess::NotRunning; }
  QTableWidget* table() const { return table_; }
  QString status() const;

 signals:
  void finished(bool measured_everything);

 private:
  void OnOutput();
  void OnFinished(int code, QProcess::ExitStatus status);
  void AddRow(const QByteArray& json_line);

  QString bench_;
  QProcess process_;
  QByteArray pending_;
  QTableWidget* table_;
  QLabel* status_;
  QCheckBox* quick_;
  QPushButton* measure_;
};

// Adds Help > "The lecture's table..." to `window`, running the sbx-bench next to this program.
void AddLectureHelp(QMainWindow* window);

}  // namespace sbx::ui
