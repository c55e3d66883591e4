// The window marks a renderer hidden when its tile is out of view of the grid's scroll area or
// the window is minimised, and visible when it comes back, through the broker (the renderer is
// told, the slot's visibility changes, a `visibility` event is emitted).
#include <gtest/gtest.h>

#include <QApplication>
#include <QRect>
#include <QScrollBar>
#include <vector>

#include "tests/ui/ui_test_util.h"
#include "ui/broker_bridge.h"
#include "ui/main_window.h"
#include "ui/renderer_grid.h"
#include "ui/renderer_model.h"
#include "ui/renderer_view.h"

namespace sbx::ui::testing {
namespace {

constexpr int kRenderers = 12;

protocol::Visibility VisibilityOf(const Broker& b, int id) {
  auto snap = b.Get(id);
  return snap ? snap->visibility : protocol::Visibility::kVisible;
}

// Whether the tile of `id` shows any part of itself in the grid's viewport now.
bool TileInView(const RendererGrid& grid, int id) {
  const RendererView* view = grid.View(id);
  if (view == nullptr) return false;
  QRect port(-grid.widget()->pos(), grid.viewport()->size());
  return view->geometry().intersects(port);
}

// Every renderer's visibility is what its tile's place says.
bool VisibilityFollowsTheTiles(const WindowEnv& env, const std::vector<int>& ids) {
  for (int id : ids) {
    bool in_view = TileInView(*env.window->grid(), id);
    auto want = in_view ? protocol::Visibility::kVisible : protocol::Visibility::kHidden;
    if (VisibilityOf(*env.broker, id) != want) return false;
  }
  return true;
}

int CountHidden(const Broker& b, const std::vector<int>& ids) {
  int n = 0;
  for (int id : ids) n += VisibilityOf(b, id) == protocol::Visibility::kHidden;
  return n;
}

class VisibilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Small, so that twelve tiles of their minimum size do not all fit and the grid scrolls.
    env_.window->resize(640, 480);
    for (int i = 0; i < kRenderers; ++i) {
      auto id = env_.broker->Spawn("about:blank");
      ASSERT_TRUE(id) << id.error().ToString();
      ids_.push_back(*id);
    }
    for (int id : ids_) ASSERT_TRUE(env_.recorder->WaitFor(EventType::kReady, id));
  }

  WindowEnv env_;
  std::vector<int> ids_;
};

TEST_F(VisibilityTest, ATileScrolledOutOfViewMakesItsRendererHidden) {
  RendererGrid* grid = env_.window->grid();
  QScrollBar* bar = grid->verticalScrollBar();
  ASSERT_TRUE(WaitUntil([&] { return bar->maximum() > 0; })) << "the grid does not scroll";
  ASSERT_TRUE(WaitUntil([&] { return VisibilityFollowsTheTiles(env_, ids_); }));
  // The top of the grid is in view, its bottom is not.
  EXPECT_EQ(VisibilityOf(*env_.broker, ids_.front()), protocol::Visibility::kVisible);
  EXPECT_EQ(VisibilityOf(*env_.broker, ids_.back()), protocol::Visibility::kHidden);
  EXPECT_TRUE(env_.recorder->Has(EventType::kVisibility, ids_.back()));
  // The Task Manager says so too.
  RendererModel* model = env_.window->model();
  model->Refresh();
  int row = model->RowForId(ids_.back());
  ASSERT_GE(row, 0);
  EXPECT_EQ(model->data(model->index(row, RendererModel::kVisibility)).toString(), "hidden");

  size_t from = env_.recorder->size();
  bar->setValue(bar->maximum());
  ASSERT_TRUE(env_.recorder->WaitFor(
      [&](const BrokerEvent& e) {
        return e.type == EventType::kVisibility && e.id == ids_.front() &&
               e.visibility == protocol::Visibility::kHidden;
      },
      10s, from));
  ASSERT_TRUE(WaitUntil([&] { return VisibilityFollowsTheTiles(env_, ids_); }));
  EXPECT_EQ(VisibilityOf(*env_.broker, ids_.back()), protocol::Visibility::kVisible);
}

TEST_F(VisibilityTest, MinimisedEveryRendererIsHiddenAndRestoredTheTilesInViewAreVisible) {
  ASSERT_TRUE(WaitUntil([&] { return VisibilityFollowsTheTiles(env_, ids_); }));
  int hidden_in_view = CountHidden(*env_.broker, ids_);
  ASSERT_LT(hidden_in_view, kRenderers);
  env_.window->showMinimized();
  ASSERT_TRUE(WaitUntil([&] { return CountHidden(*env_.broker, ids_) == kRenderers; }));
  env_.window->showNormal();
  ASSERT_TRUE(WaitUntil([&] {
    return CountHidden(*env_.broker, ids_) < kRenderers && VisibilityFollowsTheTiles(env_, ids_);
  }));
  EXPECT_EQ(VisibilityOf(*env_.broker, ids_.front()), protocol::Visibility::kVisible);
}

}  // namespace
}  // namespace sbx::ui::testing
