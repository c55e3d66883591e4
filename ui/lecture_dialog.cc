#include "ui/lecture_dialog.h"

#include <QCheckBox>
#include <QCoreApplication>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMainWindow>
#include <QMenu>
#include <QMenuBar>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace sbx::ui {

namespace {

// A number with as many digits as its size deserves, as sbx-bench prints it.
QString Num(double v) { return QString::number(v, 'f', v >= 100 ? 0 : v >= 10 ? 1 : 2); }

QString Cells(const nlohmann::json& cells) {
  QStringList parts;
  for (const auto& c : cells) {
    QString label = QString::fromStdString(c.value("label", ""));
    if (c.contains("fact")) {
      parts << label + QStringLiteral(": ") + QString::fromStdString(c.value("fact", ""));
    } else if (c.contains("value") && c["value"].is_number()) {
      parts << label + QLatin1Char(' ') + Num(c["value"].get<double>()) + QLatin1Char(' ') +
                   QString::fromStdString(c.value("unit", ""));
    }
  }
  return parts.join(QStringLiteral("\n"));
}

}  // namespace

LectureDialog::LectureDialog(QString bench, QWidget* parent)
    : QDialog(parent), bench_(std::move(bench)) {
  setObjectName(QStringLiteral("lecture-dialog"));
  setWindowTitle(QStringLiteral("The lecture's table: threads, processes and IPC, measured here"));
  table_ = new QTableWidget(0, 4, this);
  table_->setHorizontalHeaderLabels({QStringLiteral("Topic"), QStringLiteral("Row"),
                                     QStringLiteral("Measured"), QStringLiteral("What it shows")});
  table_->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setWordWrap(true);
  table_->verticalHeader()->setVisible(false);
  status_ = new QLabel(QStringLiteral("Every cell is measured when you press Measure, on this "
                                      "machine, by sbx-bench --lecture."),
                       this);
  status_->setWordWrap(true);
  quick_ = new QCheckBox(QStringLiteral("Quick (fewer samples)"), this);
  measure_ = new QPushButton(QStringLiteral("Measure"), this);
  auto* close = new QPushButton(QStringLiteral("Close"), this);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(quick_);
  buttons->addStretch();
  buttons->addWidget(measure_);
  buttons->addWidget(close);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(table_);
  layout->addWidget(status_);
  layout->addLayout(buttons);
  resize(1100, 700);

  connect(measure_, &QPushButton::clicked, this, [this] { Measure(quick_->isChecked()); });
  connect(close, &QPushButton::clicked, this, &QDialog::close);
  connect(&process_, &QProcess::readyReadStandardOutput, this, &LectureDialog::OnOutput);
  connect(&process_, &QProcess::finished, this, &LectureDialog::OnFinished);
  connect(&process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e != QProcess::FailedToStart) return;
    status_->setText(QStringLiteral("Could not start ") + bench_ + QStringLiteral(": ") +
                     process_.errorString());
    measure_->setEnabled(true);
    emit finished(false);
  });
}

LectureDialog::~LectureDialog() {
  // A run still going ends with the dialog; QProcess would do it too, but only after a warning.
  if (running()) {
    process_.kill();
    process_.waitForFinished(5000);
  }
}

void LectureDialog::Measure(bool quick) {
  if (running()) return;
  table_->setRowCount(0);
  pending_.clear();
  measure_->setEnabled(false);
  status_->setText(QStringLiteral("Measuring... rows appear as they are measured."));
  QStringList args = {QStringLiteral("--lecture"), QStringLiteral("--json")};
  if (quick) args << QStringLiteral("--quick");
  process_.setProcessChannelMode(QProcess::ForwardedErrorChannel);
  process_.start(bench_, args);
}

QString LectureDialog::status() const { return status_->text(); }

void LectureDialog::OnOutput() {
  pending_ += process_.readAllStandardOutput();
  for (qsizetype nl; (nl = pending_.indexOf('\n')) >= 0;) {
    AddRow(pending_.left(nl));
    pending_.remove(0, nl + 1);
  }
}

void LectureDialog::AddRow(const QByteArray& line) {
  auto j = nlohmann::json::parse(line.toStdString(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  int row = table_->rowCount();
  table_->insertRow(row);
  auto text = [&](const char* key) { return QString::fromStdString(j.value(key, "")); };
  table_->setItem(row, 0, new QTableWidgetItem(text("section")));
  table_->setItem(row, 1, new QTableWidgetItem(text("name")));
  table_->setItem(row, 2,
                  new QTableWidgetItem(j.contains("cells") ? Cells(j["cells"]) : QString()));
  table_->setItem(row, 3, new QTableWidgetItem(text("says")));
  table_->resizeRowToContents(row);
}

void LectureDialog::OnFinished(int code, QProcess::ExitStatus status) {
  OnOutput();
  bool ok = status == QProcess::NormalExit && code == 0;
  status_->setText(ok ? QStringLiteral("Measured now, on this machine: run it again and the "
                                       "numbers move, the facts do not.")
                      : QStringLiteral("Some rows could not be measured (sbx-bench wrote why on "
                                       "its standard error)."));
  measure_->setEnabled(true);
  emit finished(ok);
}

void AddLectureHelp(QMainWindow* window) {
  QMenu* help = window->menuBar()->addMenu(QStringLiteral("&Help"));
  QAction* a = help->addAction(QStringLiteral("The lecture's table..."));
  a->setObjectName(QStringLiteral("action-lecture"));
  a->setStatusTip(
      QStringLiteral("Threads against processes and every IPC approach, measured on this machine"));
  QObject::connect(a, &QAction::triggered, window, [window] {
    auto* d = window->findChild<LectureDialog*>();
    if (d == nullptr) {
      d = new LectureDialog(QCoreApplication::applicationDirPath() + QStringLiteral("/sbx-bench"),
                            window);
    }
    d->show();
    d->raise();
  });
}

}  // namespace sbx::ui
