// sbx-lecture-exit: the smallest program to fork+exec for the lecture's creation row. Linked
// statically, so the figure is the kernel's exec and not the dynamic loader's work.
int main() { return 0; }
