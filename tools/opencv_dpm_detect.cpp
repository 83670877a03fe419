// Run OpenCV's cascade DPM detector (cv::dpm::DPMDetector, opencv_contrib) on images.
//
// Usage: opencv_dpm_detect MODEL.xml SCALE IMAGE...
// Each image is resized by SCALE (bilinear) before detection; boxes are divided by SCALE.
// Output, one line per detection: image x1 y1 x2 y2 score  (0-based pixels, x2 = x1 + width - 1).
// Build: g++ -O2 -o opencv_dpm_detect opencv_dpm_detect.cpp $(pkg-config --cflags --libs opencv4)
#include <opencv2/dpm.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL.xml SCALE IMAGE...\n", argv[0]);
        return 2;
    }
    std::vector<std::string> models(1, argv[1]);
    cv::Ptr<cv::dpm::DPMDetector> detector = cv::dpm::DPMDetector::create(models);
    if (detector->isEmpty()) {
        std::fprintf(stderr, "%s: no model read\n", argv[1]);
        return 1;
    }
    double scale = std::atof(argv[2]);
    for (int i = 3; i < argc; i++) {
        cv::Mat image = cv::imread(argv[i], cv::IMREAD_COLOR);
        if (image.empty()) {
            std::fprintf(stderr, "%s: cannot read the image\n", argv[i]);
            return 1;
        }
        if (scale != 1.0)
            cv::resize(image, image, cv::Size(), scale, scale, cv::INTER_LINEAR);
        std::vector<cv::dpm::DPMDetector::ObjectDetection> dets;
        detector->detect(image, dets);
        for (size_t k = 0; k < dets.size(); k++) {
            const cv::Rect &r = dets[k].rect;
            std::printf("%s %.3f %.3f %.3f %.3f %.6f\n", argv[i], r.x / scale, r.y / scale,
                        (r.x + r.width - 1) / scale, (r.y + r.height - 1) / scale, dets[k].score);
        }
        std::fflush(stdout);
    }
    return 0;
}
